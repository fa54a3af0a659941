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

	"github.com/imageflow/imageflow/emulator/images"
	"github.com/imageflow/imageflow/emulator/internal/core"
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

// IdentityHandler serves identity (/v2.0, /v3) and the admin endpoints under /_emulator/.
func (e *Emulator) IdentityHandler() http.Handler {
	mux := http.NewServeMux()
	e.identity.Route(mux)
	e.routeAdmin(mux)
	return e.faults.Wrap("", "identity", mux)
}

// RegionHandler serves one region's image API (/v2) and Cloud Files (/v1/<account>), each
// behind identity's token check and the fault layer.
func (e *Emulator) RegionHandler(name string) http.Handler {
	imgMux := http.NewServeMux()
	e.images.Route(imgMux, name)
	imagesH := e.faults.Wrap(name, "images", e.identity.Authenticated(imgMux))
	var filesH http.Handler
	if e.hasFiles(name) {
		filesMux := http.NewServeMux()
		e.objects.Route(filesMux, name)
		filesH = e.faults.Wrap(name, "files", e.objects.WithTempURL(name, filesMux,
			e.identity.Authenticated(filesMux)))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/" || p == "/versions" || p == "/v2/versions":
			images.Versions(w, r)
		case p == "/v2" || strings.HasPrefix(p, "/v2/"):
			imagesH.ServeHTTP(w, r)
		case strings.HasPrefix(p, "/v1/") && filesH != nil:
			if strings.Count(p, "/") == 3 && strings.HasSuffix(p, "/") {
				// "/v1/<account>/" is the account, as Swift treats it (gophercloud's bulk delete uses it)
				r.URL.Path = strings.TrimSuffix(p, "/")
			}
			filesH.ServeHTTP(w, r)
		default:
			core.Fail(w, 404, "no service at %s in region %s", p, name)
		}
	})
}
