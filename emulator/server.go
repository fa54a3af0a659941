package emulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type servers struct {
	identityURL string
	regionURLs  map[string]string // region -> http://host:port
	https       []*http.Server
}

func (s *servers) close() error {
	var errs []error
	for _, h := range s.https {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := h.Shutdown(ctx); err != nil {
			errs = append(errs, h.Close())
		}
		cancel()
	}
	return errors.Join(errs...)
}

// Start listens for identity on addr and for each region on the next ports in the order of
// Regions (with port 0, every listener takes a free port).
func (e *Emulator) Start(addr string) error {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("emulator address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("emulator address %q: port is not a number", addr)
	}
	s := &servers{regionURLs: map[string]string{}}
	listen := func(p int, h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			return "", fmt.Errorf("emulator cannot listen on %s: %w", net.JoinHostPort(host, strconv.Itoa(p)), err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		s.https = append(s.https, srv)
		go func() { _ = srv.Serve(ln) }()
		return e.publicURL(ln.Addr().(*net.TCPAddr)), nil
	}
	if s.identityURL, err = listen(port, e.IdentityHandler()); err != nil {
		return err
	}
	for i, name := range e.regionNames() {
		p := 0
		if port != 0 {
			p = port + 1 + i
		}
		u, err := listen(p, e.RegionHandler(name))
		if err != nil {
			_ = s.close()
			return err
		}
		s.regionURLs[name] = u
	}
	e.srv = s
	return nil
}

func (e *Emulator) publicURL(a *net.TCPAddr) string {
	host := e.cfg.PublicHost
	if host == "" {
		host = a.IP.String()
		if a.IP.IsUnspecified() {
			host = "127.0.0.1"
		}
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(a.Port))
}

// IdentityURL is the identity endpoint clients authenticate against, e.g. http://127.0.0.1:8900/v2.0/.
// Before Start (handlers mounted elsewhere) it is "/v2.0/".
func (e *Emulator) IdentityURL() string { return e.BaseURL() + "/v2.0/" }

// BaseURL is identity's host URL (where /_emulator/ admin endpoints live); "" before Start.
func (e *Emulator) BaseURL() string {
	if e.srv == nil {
		return ""
	}
	return e.srv.identityURL
}

// RegionURL is a region's host URL; its image API is at /v2 and Cloud Files at /v1/MossoCloudFS_<tenant>.
func (e *Emulator) RegionURL(name string) string {
	if e.srv == nil {
		return ""
	}
	return e.srv.regionURLs[name]
}

// IdentityHandler serves POST /v2.0/tokens and the admin endpoints under /_emulator/.
func (e *Emulator) IdentityHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2.0/tokens", e.createToken)
	mux.HandleFunc("GET /v2.0", e.identityVersion)
	mux.Handle("GET /v2.0/tenants", e.authenticated(http.HandlerFunc(e.listTenants)))
	mux.Handle("GET /v2.0/tenants/{id}", e.authenticated(http.HandlerFunc(e.getTenant)))
	mux.HandleFunc("GET /v2.0/{$}", e.identityVersion)
	mux.HandleFunc("/v2.0/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, 404, "The resource %s %s could not be found.", r.Method, r.URL.Path)
	})
	mux.HandleFunc("POST /v3/auth/tokens", e.createTokenV3)
	mux.HandleFunc("GET /v3", e.identityVersionV3)
	mux.HandleFunc("GET /v3/{$}", e.identityVersionV3)
	mux.HandleFunc("/_emulator/faults", e.adminFaults)
	mux.HandleFunc("POST /_emulator/tokens/expire", e.adminExpireTokens)
	mux.HandleFunc("PUT /_emulator/token-ttl", e.adminTokenTTL)
	mux.HandleFunc("DELETE /_emulator/token-ttl", e.adminTokenTTL)
	mux.HandleFunc("POST /_emulator/snapshots", e.adminSnapshot)
	return e.faults.wrap("", "identity", mux)
}

// RegionHandler serves one region's image API (/v2) and Cloud Files (/v1/<account>).
func (e *Emulator) RegionHandler(name string) http.Handler {
	images := http.NewServeMux()
	if e.isGeneric(name) {
		e.routeGeneric(images, name)
	}
	e.routeImages(images, name)
	files := http.NewServeMux()
	e.routeFiles(files, name)
	imagesH := e.faults.wrap(name, "images", e.authenticated(images))
	filesH := e.faults.wrap(name, "files", e.authenticated(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/" || p == "/versions" || p == "/v2/versions":
			e.imageVersions(w, r)
		case p == "/v2" || p == "/v2/" || hasPrefix(p, "/v2/"):
			imagesH.ServeHTTP(w, r)
		case hasPrefix(p, "/v1/") && e.hasFiles(name):
			if strings.Count(p, "/") == 3 && strings.HasSuffix(p, "/") {
				// "/v1/<account>/" is the account, as Swift treats it (gophercloud's bulk delete uses it)
				r.URL.Path = strings.TrimSuffix(p, "/")
			}
			filesH.ServeHTTP(w, r)
		default:
			fail(w, 404, "no service at %s in region %s", p, name)
		}
	})
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

type ctxKey struct{}

// authenticated answers 401 to a missing, unknown or expired X-Auth-Token and passes the
// caller's tenant on in the request context.
func (e *Emulator) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Auth-Token")
		if id == "" {
			fail(w, 401, "This server could not verify that you are authorized to access the document you requested.")
			return
		}
		e.mu.Lock()
		t := e.st.Tokens[id]
		e.mu.Unlock()
		if t == nil || !time.Now().Before(t.Expires) {
			fail(w, 401, "The token provided is unknown or has expired.")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, t.Tenant)))
	})
}

func caller(r *http.Request) string { s, _ := r.Context().Value(ctxKey{}).(string); return s }

// imageVersions is Glance's version document: 300 Multiple Choices at the root, 200 at
// /versions (glanceclient asks <endpoint>/versions, and its endpoint here ends in /v2).
func (e *Emulator) imageVersions(w http.ResponseWriter, r *http.Request) {
	self := "http://" + r.Host + "/v2/"
	code := http.StatusMultipleChoices
	if strings.HasSuffix(r.URL.Path, "/versions") {
		code = http.StatusOK
	}
	writeJSON(w, code, map[string]any{"versions": []any{
		map[string]any{"id": "v2.9", "status": "CURRENT", "links": []any{map[string]any{"rel": "self", "href": self}}},
	}})
}

func (e *Emulator) identityVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, map[string]any{"version": map[string]any{
		"id": "v2.0", "status": "stable", "updated": "2014-04-17T00:00:00Z",
		"links": []any{map[string]any{"rel": "self", "href": "http://" + r.Host + "/v2.0/"}},
	}})
}
