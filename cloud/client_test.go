package cloud

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/emutest"
)

func startEmu(t testing.TB, mod ...func(*emulator.Config)) *emulator.Emulator {
	return emutest.Start(t, mod...)
}

func connect(t testing.TB, e *emulator.Emulator, user string, opts ...Options) *Client {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	c, err := New(
		context.Background(),
		Credentials{IdentityURL: e.IdentityURL(), Username: user, APIKey: user + "-api-key"},
		o,
	)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func findImage(t testing.TB, c *Client, region, name string) Image {
	t.Helper()
	imgs, err := c.ListImages(context.Background(), region, ImageFilter{Name: name})
	if err != nil || len(imgs) != 1 {
		t.Fatalf("find %s: %v %v", name, imgs, err)
	}
	return imgs[0]
}

func TestAuthenticate(t *testing.T) {
	e := startEmu(t)
	ctx := context.Background()
	c := connect(t, e, "demo")
	if c.Tenant() != "100001" || c.DefaultRegion() != "DFW" {
		t.Fatalf("tenant %s region %s", c.Tenant(), c.DefaultRegion())
	}
	pw, err := New(
		ctx,
		Credentials{IdentityURL: e.BaseURL(), Username: "partner", Password: "partner-password"},
		Options{},
	)
	if err != nil || pw.Tenant() != "100002" {
		t.Fatalf("password auth: %v", err)
	}
	_, err = New(
		ctx,
		Credentials{IdentityURL: e.IdentityURL(), Username: "demo", APIKey: "wrong-secret-key"},
		Options{},
	)
	if err == nil || !strings.Contains(err.Error(), "rejected the credentials") ||
		strings.Contains(err.Error(), "wrong-secret-key") || strings.Count(err.Error(), e.IdentityURL()) != 1 ||
		KindOf(err) != Unauthorized {
		t.Fatalf("bad key (the identity address once, Unauthorized): %v", err)
	}
	if _, err := New(ctx, Credentials{IdentityURL: e.IdentityURL(), Username: "demo"}, Options{}); err == nil {
		t.Fatal("no secret accepted")
	}
	creds := Credentials{IdentityURL: "x", Username: "u", APIKey: "top-secret", Password: "pw-secret"}
	for _, s := range []string{creds.String(), creds.GoString()} {
		if strings.Contains(s, "top-secret") || strings.Contains(s, "pw-secret") {
			t.Fatalf("credentials print their secrets: %s", s)
		}
	}
	if _, err := c.Images("MARS"); KindOf(err) != NotFound || !strings.Contains(err.Error(), `region "MARS"`) {
		t.Fatalf("unknown region: %v", err)
	}
}

func TestTypedErrors(t *testing.T) {
	e := startEmu(t)
	ctx := context.Background()
	c, p := connect(t, e, "demo"), connect(t, e, "partner")
	web := findImage(t, c, "DFW", "demo-web-01")
	base := findImage(t, c, "DFW", "Debian 12 (Bookworm) (PVHVM)")

	_, err := p.GetImage(ctx, "DFW", web.ID)
	wantKind(t, err, NotFound, 404)
	_, err = c.PatchImage(ctx, "DFW", base.ID, []PatchOp{{Op: "replace", Path: "/name", Value: "x"}})
	wantKind(t, err, Forbidden, 403)
	_, err = c.PatchImage(ctx, "DFW", web.ID, []PatchOp{{Op: "replace", Path: "/no-such-property", Value: "x"}})
	wantKind(t, err, Conflict, 409)
	_, err = c.PatchImage(ctx, "DFW", web.ID, []PatchOp{{Op: "add", Path: "/n", Value: 5}})
	wantKind(t, err, Invalid, 400)
	if _, err := c.AddMember(ctx, "DFW", web.ID, "100002"); err != nil {
		t.Fatal(err)
	}
	_, err = c.AddMember(ctx, "DFW", web.ID, "100002")
	if !IsConflict(err) {
		t.Fatalf("second add: %v", err)
	}
	_, err = c.UpdateMember(ctx, "DFW", web.ID, "accepted") // the owner is not the member
	wantKind(t, err, NotFound, 404)
	if m, err := p.UpdateMember(ctx, "DFW", web.ID, "accepted"); err != nil || m.Status != "accepted" {
		t.Fatalf("accept: %v %v", m, err)
	}

	// A storm longer than the client will wait surfaces as RateLimited with the server's Retry-After.
	_ = e.AddFault(emulator.Fault{Kind: "rate-limit", Region: "DFW", Service: "images", RetryAfter: 7})
	short := connect(t, e, "demo", Options{Pacing: Pacing{MaxRetryAfterWait: time.Second}})
	_, err = short.GetImage(ctx, "DFW", web.ID)
	var ce *Error
	if !errors.As(err, &ce) || ce.Kind != RateLimited || ce.RetryAfter != 7*time.Second {
		t.Fatalf("rate limited: %#v", err)
	}
	e.ClearFaults()
	_ = e.AddFault(emulator.Fault{Kind: "error", Region: "DFW", Status: 503})
	_, err = c.GetImage(ctx, "DFW", web.ID)
	wantKind(t, err, Unavailable, 503)
	e.ClearFaults()
}

func wantKind(t *testing.T, err error, k Kind, status int) {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) || ce.Kind != k || ce.Status != status || ce.Message == "" || ce.Op == "" {
		t.Fatalf("want %s %d with a message, got %#v (%v)", k, status, err, err)
	}
}

func TestUnavailableWhenCloudIsDown(t *testing.T) {
	e := startEmu(t)
	c := connect(t, e, "demo")
	_ = e.Close()
	_, err := c.GetImage(context.Background(), "DFW", "x")
	if KindOf(err) != Unavailable {
		t.Fatalf("cloud down: %#v", err)
	}
}

func TestRateLimitStormIsWaitedOut(t *testing.T) {
	e := startEmu(t)
	ctx := context.Background()
	c := connect(t, e, "demo")
	web := findImage(t, c, "DFW", "demo-web-01")
	_ = e.AddFault(emulator.Fault{Kind: "rate-limit", Region: "DFW", Count: 3, RetryAfter: 1})
	start := time.Now()
	img, err := c.GetImage(ctx, "DFW", web.ID)
	if err != nil || img.ID != web.ID {
		t.Fatalf("after storm: %v", err)
	}
	if d := time.Since(start); d < 3*time.Second {
		t.Fatalf("returned after %v: Retry-After was not honoured", d)
	}
}

func TestReauthOnExpiredToken(t *testing.T) {
	e := startEmu(t)
	ctx := context.Background()
	c := connect(t, e, "demo")
	web := findImage(t, c, "DFW", "demo-web-01")
	if err := c.EnsureContainer(ctx, "DFW", "c"); err != nil {
		t.Fatal(err)
	}
	e.ExpireTokens()
	if _, err := c.GetImage(ctx, "DFW", web.ID); err != nil {
		t.Fatalf("JSON call after expiry: %v", err)
	}
	e.ExpireTokens()
	rc, err := c.OpenRange(ctx, "DFW", "c", "missing", 0, 10)
	if KindOf(err) != NotFound {
		t.Fatalf("streamed GET after expiry: %v %v", rc, err)
	}
	e.ExpireTokens()
	// A streamed PUT cannot be replayed: the client re-authenticates and reports 401 so the
	// caller restarts; the restart then works.
	_, err = c.PutStream(ctx, "DFW", "c", "o", strings.NewReader("abc"), 3, "")
	if KindOf(err) != Unauthorized {
		t.Fatalf("streamed PUT after expiry: %v", err)
	}
	if _, err := c.PutStream(ctx, "DFW", "c", "o", strings.NewReader("abc"), 3, ""); err != nil {
		t.Fatalf("restarted PUT: %v", err)
	}
}

// TestIdentityDownDuringRenewalIsTransient: identity answering 500 while a token is renewed is
// an outage to wait out, not bad credentials (issue 24: every failed renewal was Unauthorized,
// which failed a migration for good with the advice to check a key that was fine).
func TestIdentityDownDuringRenewalIsTransient(t *testing.T) {
	e := startEmu(t)
	ctx := context.Background()
	c := connect(t, e, "demo")
	web := findImage(t, c, "DFW", "demo-web-01")
	e.ExpireTokens()
	if err := e.AddFault(emulator.Fault{Kind: "error", Service: "identity", Status: 500}); err != nil {
		t.Fatal(err)
	}
	_, err := c.GetImage(ctx, "DFW", web.ID)
	if KindOf(err) != Unavailable || !strings.Contains(err.Error(), "identity is not answering") {
		t.Fatalf("renewal against a failing identity: %v (kind %q), want Unavailable", err, KindOf(err))
	}
	e.ClearFaults()
	if _, err := c.GetImage(ctx, "DFW", web.ID); err != nil {
		t.Fatalf("after identity came back: %v", err)
	}
}
