package reliability

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// natsCluster is three embedded nats-servers clustered by routes, with JetStream on each.
type natsCluster struct {
	t      *testing.T
	opts   []*natsserver.Options
	nodes  []*natsserver.Server
	client []string // each node's client URL
}

func startCluster(t *testing.T, n int) *natsCluster {
	c := &natsCluster{t: t}
	var routes []string
	for range n {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", testenv.FreePort(t)))
	}
	for i := range n {
		clientPort, routePort := testenv.FreePort(t), strings.TrimPrefix(routes[i], "nats://127.0.0.1:")
		var rp int
		fmt.Sscan(routePort, &rp)
		c.opts = append(c.opts, &natsserver.Options{ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1",
			Port: clientPort, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: natsserver.ClusterOpts{Name: "imageflow", Host: "127.0.0.1", Port: rp},
			Routes:  natsserver.RoutesFromStr(strings.Join(routes, ","))})
		c.client = append(c.client, fmt.Sprintf("nats://127.0.0.1:%d", clientPort))
	}
	c.nodes = make([]*natsserver.Server, n)
	for i := range n {
		c.start(i)
	}
	t.Cleanup(func() {
		for _, s := range c.nodes {
			if s != nil {
				s.Shutdown()
			}
		}
	})
	return c
}

// start runs node i (again, on its ports and store).
func (c *natsCluster) start(i int) {
	s, err := natsserver.NewServer(c.opts[i])
	if err != nil {
		c.t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		c.t.Fatalf("NATS node %d did not start", i+1)
	}
	c.nodes[i] = s
}

func (c *natsCluster) stop(i int) {
	c.nodes[i].Shutdown()
	c.nodes[i].WaitForShutdown()
	c.nodes[i] = nil
}

// index is the node with the server name.
func (c *natsCluster) index(name string) int {
	for i, o := range c.opts {
		if o.ServerName == name {
			return i
		}
	}
	c.t.Fatalf("no node %s", name)
	return -1
}

// connect dials the cluster with the given node first (no shuffling), reconnecting forever.
func (c *natsCluster) connect(first int) *nats.Conn {
	urls := append([]string{c.client[first]}, c.client[:first]...)
	urls = append(urls, c.client[first+1:]...)
	nc, err := nats.Connect(strings.Join(urls, ","), nats.DontRandomize(), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// TestNATSClusterLosesANode runs the bridge against a three-node NATS cluster with the stream
// replicated on all three (R3). With events flowing, the node that leads the stream, which is
// also the one the bridge is connected to, stops and later starts again: the bridge reconnects to
// another node, and every event is handled once (one run each, none dead-lettered).
func TestNATSClusterLosesANode(t *testing.T) {
	env := testenv.New(t)
	cl := startCluster(t, 3)
	ctx := context.Background()
	setup, _ := jetstream.New(cl.connect(0))
	var st jetstream.Stream
	wait(t, "the cluster to elect a JetStream leader", time.Minute, func() bool {
		var err error
		st, err = events.EnsureStream(ctx, setup, "IMAGEFLOW", testenv.Subjects, 3)
		return err == nil
	})
	info, err := st.Info(ctx)
	if err != nil || info.Config.Replicas != 3 || info.Cluster == nil {
		t.Fatalf("stream %+v %v", info, err)
	}
	leader := cl.index(info.Cluster.Leader)
	bridgeConn := cl.connect(leader)
	js, _ := jetstream.New(bridgeConn)
	b, err := events.NewBridge(ctx, js, env.Client, events.BridgeConfig{Subjects: testenv.Subjects,
		Stream: "IMAGEFLOW", Replicas: 3, Tenant: "100001", TaskQueue: "rel-nobody", Concurrency: 4,
		AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pubJS, _ := jetstream.New(cl.connect((leader + 1) % 3))
	pub := events.NewPublisher(pubJS, testenv.Subjects, "test")
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			in := workflows.MigrateInput{ImageID: fmt.Sprintf("img-%03d", i), SourceRegion: "DFW",
				TargetRegions: []string{"IAD"}}
			// A failed publish is retried with the same event id: the stream's duplicate window
			// keeps one copy even if the first attempt was stored after all.
			for pub.Command(ctx, events.CmdMigrate, fmt.Sprintf("evt-%03d", i), "100001", in) != nil {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	publish(0, 40)
	bctx, stopBridge := context.WithCancel(ctx)
	defer stopBridge()
	go func() { _ = b.Run(bctx) }()
	wait(t, "some events handled", time.Minute, func() bool { return b.Stats.Started.Load() >= 10 })
	cl.stop(leader)
	publish(40, 80) // while the stream elects a new leader and the bridge reconnects
	if bridgeConn.ConnectedUrl() == cl.client[leader] {
		t.Fatalf("the bridge is still connected to the stopped node")
	}
	cl.start(leader)
	publish(80, 120)
	wait(t, "a run for each of the 120 events", 2*time.Minute, func() bool { return b.Stats.Started.Load() >= 120 })
	time.Sleep(time.Second) // any late redelivery would show now
	resp, err := env.Client.ListWorkflow(ctx,
		&workflowservice.ListWorkflowExecutionsRequest{Namespace: env.Namespace, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.Executions); n != 120 || b.Stats.Started.Load() != 120 || b.Stats.DeadLettered.Load() != 0 {
		t.Fatalf("%d runs, %d started, %d duplicates, %d dead for 120 events", n, b.Stats.Started.Load(),
			b.Stats.Duplicates.Load(), b.Stats.DeadLettered.Load())
	}
	// The restarted node catches up: all three replicas current again.
	wait(t, "the restarted node to catch up", time.Minute, func() bool {
		info, err := st.Info(ctx)
		if err != nil || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
		return true
	})
	t.Logf("120 events across the loss of the stream's leader (%s): %d runs, %d redeliveries found duplicate, "+
		"0 dead-lettered; the bridge moved to %s", cl.opts[leader].ServerName, len(resp.Executions),
		b.Stats.Duplicates.Load(), bridgeConn.ConnectedServerName())
}
