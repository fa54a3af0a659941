package objectstorage

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

// Temporary URLs, as Swift's tempurl middleware serves them: an account sets a key
// (POST /v1/<account> with X-Account-Meta-Temp-URL-Key) and anyone holding a URL signed with it
// (temp_url_sig = HMAC-SHA1 of "GET\n<expires>\n<path>", temp_url_expires) may GET or HEAD
// that one object until it expires, with no token. Glance's web-download fetches such a URL.

// TempURLKeyHeader is the account metadata holding the key.
const TempURLKeyHeader = "X-Account-Meta-Temp-Url-Key"

// WithTempURL serves a request signed for a temporary URL itself, and hands every other to
// authed (the token check in front of files).
func (s *Service) WithTempURL(region string, files, authed http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("temp_url_sig") == "" {
			authed.ServeHTTP(w, r)
			return
		}
		tenant, ok := s.tempURLTenant(region, r)
		if !ok {
			core.Fail(w, 401, "Temporary URL invalid or expired.")
			return
		}
		files.ServeHTTP(w, core.WithCaller(r, tenant))
	})
}

// tempURLTenant checks a temporary URL's signature and expiry against its account's key.
func (s *Service) tempURLTenant(region string, r *http.Request) (string, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", false
	}
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/v1/"), "/", 3)
	if len(parts) != 3 || parts[2] == "" {
		return "", false // objects only
	}
	tenant := strings.TrimPrefix(parts[0], "MossoCloudFS_")
	q := r.URL.Query()
	expires, err := strconv.ParseInt(q.Get("temp_url_expires"), 10, 64)
	if err != nil || time.Now().Unix() >= expires {
		return "", false
	}
	s.store.Lock()
	key := s.meta[region][tenant][TempURLKeyHeader]
	s.store.Unlock()
	if key == "" {
		return "", false
	}
	want, err := hex.DecodeString(q.Get("temp_url_sig"))
	if err != nil {
		return "", false
	}
	// Swift signs GET; a HEAD is allowed with a GET signature too.
	return tenant, hmac.Equal(want, TempURLSignature(key, http.MethodGet, expires, r.URL.Path))
}

// TempURLSignature is Swift's signature of a temporary URL for method on path until expires.
func TempURLSignature(key, method string, expires int64, path string) []byte {
	mac := hmac.New(sha1.New, []byte(key))
	mac.Write([]byte(method + "\n" + strconv.FormatInt(expires, 10) + "\n" + path))
	return mac.Sum(nil)
}

// setAccountMeta records X-Account-Meta-* headers (an empty value removes one).
func (s *Service) setAccountMeta(fs *fileSpace, h http.Header) {
	s.store.Lock()
	defer s.store.Unlock()
	metas := s.meta[fs.region]
	if metas[fs.tenant] == nil {
		metas[fs.tenant] = map[string]string{}
	}
	for k, vs := range h {
		if !strings.HasPrefix(k, "X-Account-Meta-") || len(vs) == 0 {
			continue
		}
		if vs[0] == "" {
			delete(metas[fs.tenant], k)
		} else {
			metas[fs.tenant][k] = vs[0]
		}
	}
	s.store.Commit()
}

// accountMeta is the account's metadata; call with the store locked.
func (fs *fileSpace) accountMeta() map[string]string { return fs.s.meta[fs.region][fs.tenant] }
