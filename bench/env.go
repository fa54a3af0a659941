package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/client"

	tlog "go.temporal.io/sdk/log"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/devserver"
)

var subjects = events.Subjects{Prefix: "imageflow"}

// env is the bench's world: the emulator in this process, an embedded Temporal server and NATS,
// and the accounts' cloud clients.
type env struct {
	dir           string
	tempDir       bool
	sz            sizes
	emu           *emulator.Emulator
	temporal      *devserver.Temporal
	tc            client.Client
	nats          *natsserver.Server
	nc            *nats.Conn
	js            jetstream.JetStream
	demo          *cloud.Client
	partner       *cloud.Client
	workerBin     string
	loopbackMiBps float64
	// oneReplicaPerHour is row 8's one-replica rate, once measured: row 13's baseline.
	oneReplicaPerHour float64
}

func numCPU() int { return runtime.NumCPU() }

func setup(ctx context.Context, dir string, sz sizes, run func(int) bool) (*env, error) {
	e := &env{dir: dir, sz: sz}
	if dir == "" {
		d, err := os.MkdirTemp("", "imageflow-bench-*")
		if err != nil {
			return nil, err
		}
		e.dir, e.tempDir = d, true
	}
	var imgs []emulator.SeedImage
	if run(1) || run(14) {
		imgs = append(imgs, emulator.SeedImage{Name: "bench-loopback", Size: sz.loopback})
	}
	if run(2) {
		imgs = append(imgs, emulator.SeedImage{Name: "bench-slow", Size: sz.slow})
	}
	if run(7) {
		imgs = append(imgs, emulator.SeedImage{Name: "bench-lineage", Size: sz.lineage})
	}
	if run(3) {
		imgs = append(
			imgs,
			emulator.SeedImage{Name: "bench-mem-small", Size: sz.memSmall},
			emulator.SeedImage{Name: "bench-mem-large", Size: sz.memLarge},
		)
	}
	if run(13) {
		imgs = append(imgs, evacuateSeeds(sz)...)
	}
	if run(8) || run(13) {
		for _, n := range scaleOutReplicas {
			for i := 0; i < sz.scaleOut; i++ {
				imgs = append(imgs, emulator.SeedImage{Name: scaleOutImage(n, i), Size: int64(sz.scaleOutMiB) << 20})
			}
		}
	}
	if run(6) {
		for i := 0; i < sz.shares; i++ {
			imgs = append(imgs, emulator.SeedImage{Name: shareImageName(i), Size: 64 << 10})
		}
	}
	fmt.Fprintf(
		os.Stderr,
		"preparing emulator (%d extra images; checksums of large ones take a while) ...\n",
		len(imgs),
	)
	emu, err := emulator.New(emulator.Config{DataDir: filepath.Join(e.dir, "emulator"), Images: imgs,
		ExportSegmentSize: 256 << 20, TaskDuration: 200 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	e.emu = emu
	if err := emu.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if e.temporal, err = devserver.StartTemporal(devserver.TemporalOptions{DBPath: filepath.Join(e.dir, "temporal.db"),
		Port: port}); err != nil {
		return nil, err
	}
	if e.tc, err = client.Dial(client.Options{HostPort: e.temporal.Address, Namespace: e.temporal.Namespace,
		Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))}); err != nil {
		return nil, err
	}
	e.nats, err = natsserver.NewServer(
		&natsserver.Options{
			Host:      "127.0.0.1",
			Port:      -1,
			JetStream: true,
			StoreDir:  filepath.Join(e.dir, "nats"),
			NoLog:     true,
			NoSigs:    true,
		},
	)
	if err != nil {
		return nil, err
	}
	go e.nats.Start()
	if !e.nats.ReadyForConnections(10 * time.Second) {
		return nil, fmt.Errorf("NATS did not start")
	}
	if e.nc, err = nats.Connect(e.nats.ClientURL()); err != nil {
		return nil, err
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		return nil, err
	}
	if e.demo, err = cloud.New(ctx, cloud.Credentials{IdentityURL: emu.IdentityURL(), Username: "demo",
		APIKey: "demo-api-key"}, cloud.Options{}); err != nil {
		return nil, err
	}
	if e.partner, err = cloud.New(ctx, cloud.Credentials{IdentityURL: emu.IdentityURL(), Username: "partner",
		APIKey: "partner-api-key"}, cloud.Options{}); err != nil {
		return nil, err
	}
	if run(3) || run(6) || run(8) || run(11) || run(13) {
		e.workerBin = filepath.Join(e.dir, "worker")
		fmt.Fprintln(os.Stderr, "building the worker binary ...")
		if out, err := exec.Command("go", "build", "-o", e.workerBin, "./worker").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build worker: %v: %s", err, out)
		}
	}
	return e, nil
}

func (e *env) close() {
	if e.nc != nil {
		e.nc.Close()
	}
	if e.nats != nil {
		e.nats.Shutdown()
	}
	if e.tc != nil {
		e.tc.Close()
	}
	if e.temporal != nil {
		_ = e.temporal.Stop()
	}
	if e.emu != nil {
		_ = e.emu.Close()
	}
	if e.tempDir {
		_ = os.RemoveAll(e.dir)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (e *env) image(name string) (cloud.Image, error) {
	imgs, err := e.demo.ListImages(context.Background(), "DFW", cloud.ImageFilter{Name: name})
	if err != nil || len(imgs) != 1 {
		return cloud.Image{}, fmt.Errorf("image %s: %v (%d found)", name, err, len(imgs))
	}
	return imgs[0], nil
}

// export exports a seeded image in DFW and returns where it landed.
func (e *env) export(ctx context.Context, img cloud.Image) (cloud.ObjectRef, error) {
	if err := e.demo.EnsureContainer(ctx, "DFW", "bench-exports"); err != nil {
		return cloud.ObjectRef{}, err
	}
	if _, err := e.demo.HeadObject(ctx, "DFW", "bench-exports", img.ID+".vhd"); err == nil {
		return cloud.ObjectRef{Region: "DFW", Container: "bench-exports", Object: img.ID + ".vhd"}, nil
	}
	t, err := e.demo.Export(ctx, "DFW", img.ID, "bench-exports")
	for err == nil && !t.Done() {
		time.Sleep(200 * time.Millisecond)
		t, err = e.demo.GetTask(ctx, "DFW", t.ID)
	}
	if err != nil {
		return cloud.ObjectRef{}, err
	}
	if t.Status != "success" {
		return cloud.ObjectRef{}, fmt.Errorf("export %s: %s", img.Name, t.Message)
	}
	c, o, _ := t.ExportLocation()
	return cloud.ObjectRef{Region: "DFW", Container: c, Object: o}, nil
}

// child is a worker process (the real binary) whose memory is sampled.
type child struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	peak int64 // KiB
	stop chan struct{}
	log  *os.File
}

// startWorker runs the worker binary for user on queue with the given extra variables.
func (e *env) startWorker(user, queue string, extra ...string) (*child, error) {
	logf, err := os.Create(filepath.Join(e.dir, "worker-"+queue+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(e.workerBin)
	cmd.Env = append(
		os.Environ(),
		"IMAGEFLOW_TEMPORAL_ADDRESS="+e.temporal.Address,
		"IMAGEFLOW_TEMPORAL_NAMESPACE="+e.temporal.Namespace,
		"IMAGEFLOW_TEMPORAL_TASK_QUEUE="+queue,
		"IMAGEFLOW_NATS_URL="+e.nats.ClientURL(),
		"IMAGEFLOW_CLOUD_IDENTITY_URL="+e.emu.IdentityURL(),
		"IMAGEFLOW_CLOUD_USERNAME="+user,
		"IMAGEFLOW_CLOUD_API_KEY="+user+"-api-key",
		"IMAGEFLOW_CLOUD_REQUESTS_PER_SECOND=0",
		"IMAGEFLOW_WORKER_HTTP_ADDR=",
		"IMAGEFLOW_WORKER_TASK_POLL_INTERVAL=200ms",
		"IMAGEFLOW_WORKER_TASK_POLL_MAX_INTERVAL=1s",
	)
	cmd.Env = append(cmd.Env, extra...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stop: make(chan struct{}), log: logf}
	go c.sample()
	return c, nil
}

func (c *child) sample() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			if rss := c.rss(); rss > 0 {
				c.mu.Lock()
				c.peak = max(c.peak, rss)
				c.mu.Unlock()
			}
		}
	}
}

// rss reads the process's resident set size in KiB from /proc.
func (c *child) rss() int64 { return procField(c.cmd.Process.Pid, "VmRSS:") }

// hwm is the kernel's own peak RSS for the process.
func (c *child) hwm() int64 { return procField(c.cmd.Process.Pid, "VmHWM:") }

func procField(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), field) {
			parts := strings.Fields(sc.Text())
			if len(parts) >= 2 {
				n, _ := strconv.ParseInt(parts[1], 10, 64)
				return n
			}
		}
	}
	return 0
}

func (c *child) resetPeak() {
	c.mu.Lock()
	c.peak = 0
	c.mu.Unlock()
}

func (c *child) peakMiB() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return float64(c.peak) / 1024
}

// shutdown stops the worker with SIGTERM and waits.
func (c *child) shutdown() {
	close(c.stop)
	_ = c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
	}
	c.log.Close()
}
