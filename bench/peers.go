package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/imageflow/imageflow/cloud"
)

// peer is a tool a user might pick instead of imageflow for the same copy, run as its Debian
// package installs it, against the same emulator, object and faults.
type peer struct {
	name string
	// copy moves src to dst (size bytes) and returns the time it took.
	copy func(ctx context.Context, src, dst cloud.ObjectRef, size int64) (time.Duration, error)
}

// peers lists the peer tools found on this machine and says which are missing.
func (e *env) peers() (found []peer, missing []string) {
	if _, err := exec.LookPath("rclone"); err == nil {
		found = append(found, peer{name: "rclone", copy: e.rcloneCopy})
	} else {
		missing = append(missing, "rclone (apt-get install rclone)")
	}
	if _, err := exec.LookPath("swift"); err == nil {
		found = append(found, peer{name: "swift download + upload (8 threads)", copy: e.swiftCopy})
	} else {
		missing = append(missing, "swift (apt-get install python3-swiftclient)")
	}
	return found, missing
}

// rcloneCopy runs rclone copyto between two remotes, one per region, configured through its
// environment (Identity v2.0 with the account's password, as a Swift user would).
func (e *env) rcloneCopy(ctx context.Context, src, dst cloud.ObjectRef, _ int64) (time.Duration, error) {
	if err := e.demo.EnsureContainer(ctx, dst.Region, dst.Container); err != nil {
		return 0, err
	}
	env := append(os.Environ(), "RCLONE_CONFIG="+filepath.Join(e.dir, "rclone.conf"))
	for name, region := range map[string]string{"SRC": src.Region, "DST": dst.Region} {
		p := "RCLONE_CONFIG_" + name + "_"
		env = append(env, p+"TYPE=swift", p+"USER=demo", p+"KEY=demo-password", p+"AUTH="+e.emu.IdentityURL(),
			p+"AUTH_VERSION=2", p+"TENANT=100001", p+"REGION="+region)
	}
	cmd := exec.CommandContext(ctx, "rclone", "copyto", "--retries", "1",
		"src:"+src.Container+"/"+src.Object, "dst:"+dst.Container+"/"+dst.Object)
	cmd.Env = env
	return timed(cmd)
}

// swiftCopy is what python-swiftclient offers: download the object to disk, then upload it as a
// segmented object with 8 segment threads (it has no copy between regions).
func (e *env) swiftCopy(ctx context.Context, src, dst cloud.ObjectRef, size int64) (time.Duration, error) {
	file := filepath.Join(e.dir, "swift-peer.bin")
	defer os.Remove(file)
	as := func(region string, args ...string) *exec.Cmd {
		base := []string{"--auth-version", "2", "-A", e.emu.IdentityURL(), "-U", "demo", "-K", "demo-password",
			"--os-tenant-name", "100001", "--os-region-name", region}
		return exec.CommandContext(ctx, "swift", append(base, args...)...)
	}
	start := time.Now()
	if _, err := timed(as(src.Region, "download", src.Container, src.Object, "-o", file)); err != nil {
		return 0, err
	}
	seg := fmt.Sprint(max(size/16, 1<<20))
	if _, err := timed(as(dst.Region, "upload", "--segment-size", seg, "--segment-threads", "8",
		"--object-name", dst.Object, dst.Container, file)); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// timed runs cmd and returns how long it took; a failure carries the tool's own words.
func timed(cmd *exec.Cmd) (time.Duration, error) {
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %s", filepath.Base(cmd.Path), err, strings.TrimSpace(string(out)))
	}
	return time.Since(start), nil
}

// peerRows times each peer on the copy and compares it with imageflow's median rate.
func (e *env) peerRows(ctx context.Context, n int, what string, src, dst cloud.ObjectRef, size int64,
	flowRate float64) ([]row, error) {
	found, missing := e.peers()
	var rows []row
	for _, p := range found {
		s, err := measure(e.sz.runs, size, func() (time.Duration, error) {
			defer e.clean(ctx, dst)
			return p.copy(ctx, src, dst, size)
		})
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", p.name, err)
		}
		rows = append(rows, row{n: n, name: what + ": peer " + p.name, measured: s.String(),
			baseline: fmt.Sprintf("imageflow %.1f MiB/s", flowRate),
			ratio:    fmt.Sprintf("imageflow %.2fx", flowRate/s.rate()), goal: "imageflow >= 1.0x",
			met: flowRate >= s.rate()})
	}
	for _, m := range missing {
		rows = append(rows, row{n: n, name: what + ": peer " + m, measured: "-", baseline: "-", ratio: "-",
			goal: "-", unjudged: "skipped: not installed"})
	}
	return rows, nil
}
