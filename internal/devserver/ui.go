package devserver

import (
	"fmt"
	"net"
	"strconv"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	"github.com/temporalio/ui-server/v2/server/server_options"
)

// UI is the Temporal web UI served from this process (its assets are embedded).
type UI struct {
	srv *uiserver.Server
	URL string
}

// StartUI serves the UI for the Temporal frontend at temporalAddr on host:port.
func StartUI(temporalAddr, namespace, host string, port int) (*UI, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	// ui-server's Start ends the process on a busy port, so check first and say which.
	if err := PortFree("Temporal UI", addr); err != nil {
		return nil, err
	}
	cfg := &uiconfig.Config{
		TemporalGRPCAddress: temporalAddr,
		Host:                host,
		Port:                port,
		EnableUI:            true,
		DefaultNamespace:    namespace,
		HideLogs:            true,
		DisableNewsFetch:    true,
		RefreshInterval:     0,
		CORS:                uiconfig.CORS{CookieInsecure: true},
	}
	srv := uiserver.NewServer(server_options.WithConfigProvider(cfg))
	go func() { _ = srv.Start() }()
	u := &UI{srv: srv, URL: "http://" + displayHost(host) + ":" + strconv.Itoa(port)}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return u, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("the Temporal UI did not start on %s", addr)
}

// Stop stops the UI server.
func (u *UI) Stop() { u.srv.Stop() }

func displayHost(h string) string {
	if h == "" || h == "0.0.0.0" || h == "127.0.0.1" {
		return "localhost"
	}
	return h
}
