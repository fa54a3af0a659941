package reliability

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/internal/testenv"
)

// long reports whether the long variants run (IMAGEFLOW_LONG_TESTS=1): a two-minute cloud outage
// instead of fifteen seconds.
func long() bool { return os.Getenv("IMAGEFLOW_LONG_TESTS") == "1" }

// The secrets the emulator's accounts use; none may appear anywhere imageflow writes.
var secrets = []string{"demo-api-key", "partner-api-key", "demo-password", "partner-password"}

var (
	buildOnce sync.Once
	workerBin string
	buildErr  error
)

// worker builds the real worker binary once per test run.
func worker(t *testing.T) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "imageflow-reliability-*")
		if err != nil {
			buildErr = err
			return
		}
		workerBin = filepath.Join(dir, "worker")
		out, err := exec.Command("go", "build", "-o", workerBin, "github.com/imageflow/imageflow/worker").
			CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build worker: %v", buildErr)
	}
	return workerBin
}

// proc is a worker process; its logs are kept for the secrets scan.
type proc struct {
	cmd  *exec.Cmd
	logs *testenv.SyncBuffer
}

// startWorker runs the worker binary as user on queue against env, with extra variables.
func startWorker(t *testing.T, env *testenv.Env, user, queue string, logs *testenv.SyncBuffer, extra ...string) *proc {
	t.Helper()
	cmd := exec.Command(worker(t))
	cmd.Env = append(
		os.Environ(),
		"IMAGEFLOW_TEMPORAL_ADDRESS="+env.TemporalAddr,
		"IMAGEFLOW_TEMPORAL_NAMESPACE="+env.Namespace,
		"IMAGEFLOW_TEMPORAL_TASK_QUEUE="+queue,
		"IMAGEFLOW_NATS_URL="+env.NATSURL,
		"IMAGEFLOW_CLOUD_IDENTITY_URL="+env.Emulator.IdentityURL(),
		"IMAGEFLOW_CLOUD_USERNAME="+user,
		"IMAGEFLOW_CLOUD_API_KEY="+user+"-api-key",
		"IMAGEFLOW_WORKER_HTTP_ADDR=",
		"IMAGEFLOW_WORKER_TASK_POLL_INTERVAL=100ms",
		"IMAGEFLOW_WORKER_TASK_POLL_MAX_INTERVAL=500ms",
		"IMAGEFLOW_WORKER_LOG_LEVEL=debug",
		"IMAGEFLOW_WORKER_STOP_TIMEOUT=3s",
	)
	cmd.Env = append(cmd.Env, extra...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: logs}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
	})
	return p
}

// kill ends the process at once, as a crash or OOM kill would: no graceful stop.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	_, _ = p.cmd.Process.Wait()
}

func findImage(t *testing.T, c *cloud.Client, region, name string) cloud.Image {
	t.Helper()
	imgs, err := c.ListImages(context.Background(), region, cloud.ImageFilter{Name: name})
	if err != nil || len(imgs) != 1 {
		t.Fatalf("find %s in %s: %v (%d)", name, region, err, len(imgs))
	}
	return imgs[0]
}

// scanForSecrets reads every workflow history in the namespace, every message in the stream and
// the given logs, and fails on any secret. It returns how much it read, for RELIABILITY.md.
func scanForSecrets(t *testing.T, env *testenv.Env, logs ...string) (histories, messages int) {
	t.Helper()
	ctx := context.Background()
	var haystack strings.Builder
	var token []byte
	for {
		resp, err := env.Client.ListWorkflow(
			ctx,
			&workflowservice.ListWorkflowExecutionsRequest{Namespace: env.Namespace, NextPageToken: token},
		)
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range resp.Executions {
			it := env.Client.GetWorkflowHistory(
				ctx,
				ex.GetExecution().GetWorkflowId(),
				ex.GetExecution().GetRunId(),
				false,
				enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT,
			)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					t.Fatal(err)
				}
				b, _ := protojson.Marshal(ev)
				haystack.Write(b)
			}
			if d, err := env.Client.DescribeWorkflowExecution(ctx, ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId()); err == nil {
				b, _ := protojson.Marshal(d) // pending activities carry their heartbeat details
				haystack.Write(b)
			}
			histories++
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	js := env.JetStream()
	if st, err := js.Stream(ctx, "IMAGEFLOW"); err == nil {
		info, _ := st.Info(ctx)
		for seq := uint64(1); info != nil && seq <= info.State.LastSeq; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				continue
			}
			haystack.Write(m.Data)
			messages++
		}
	} else if err != jetstream.ErrStreamNotFound {
		t.Fatal(err)
	}
	for _, l := range logs {
		haystack.WriteString(l)
	}
	all := haystack.String()
	for _, s := range secrets {
		if strings.Contains(all, s) {
			i := strings.Index(all, s)
			t.Errorf("secret %q found: ...%s...", s, all[max(0, i-200):min(len(all), i+50)])
		}
	}
	return histories, messages
}

// countImages counts the account's images in region carrying the migration's source stamp.
func countImages(t *testing.T, c *cloud.Client, region, sourceID string) int {
	imgs, err := c.ListImages(
		context.Background(),
		region,
		cloud.ImageFilter{Properties: map[string]string{"imageflow_source_image_id": sourceID}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return len(imgs)
}

func wait(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func start(id, queue string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                    id,
		TaskQueue:             queue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
	}
}
