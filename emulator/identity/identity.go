// Package identity is the emulator's identity service: Rackspace's Identity v2.0 (API key and
// password credentials) and Keystone v3 beside it, the accounts it knows, the tokens it issues,
// the service catalog, and the check every other service makes of a request's token.
package identity

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

// Account is one customer of the emulated cloud.
type Account struct {
	Username      string `json:"username"`
	APIKey        string `json:"api_key"`
	Password      string `json:"password"`
	Tenant        string `json:"tenant"`
	DefaultRegion string `json:"default_region"`
}

// DefaultAccounts are the accounts the emulator serves when none are configured.
func DefaultAccounts() []Account {
	return []Account{
		{Username: "demo", APIKey: "demo-api-key", Password: "demo-password", Tenant: "100001", DefaultRegion: "DFW"},
		{
			Username:      "partner",
			APIKey:        "partner-api-key",
			Password:      "partner-password",
			Tenant:        "100002",
			DefaultRegion: "IAD",
		},
	}
}

// LoadAccounts reads a JSON array of accounts from path.
func LoadAccounts(path string) ([]Account, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read accounts file: %w", err)
	}
	var accts []Account
	if err := json.Unmarshal(b, &accts); err != nil {
		return nil, fmt.Errorf("parse accounts file %s: %w", path, err)
	}
	for i, a := range accts {
		if a.Username == "" || a.Tenant == "" || (a.APIKey == "" && a.Password == "") {
			return nil, fmt.Errorf("accounts file %s: entry %d needs username, tenant and api_key or password", path, i)
		}
	}
	return accts, nil
}

// Token is an issued token: whose it is and until when.
type Token struct {
	Tenant  string    `json:"tenant"`
	Expires time.Time `json:"expires"`
}

// Config is what identity needs from the emulator that assembles it.
type Config struct {
	Accounts []Account
	// TokenTTL is the lifetime of new tokens.
	TokenTTL time.Duration
	// URL is identity's own host URL and Regions the regions to list in catalogs; both are
	// known only once the emulator listens, so they are asked when a token is issued.
	URL     func() string
	Regions func() []Region
}

// Service issues and checks tokens. Its tokens live in the emulator's saved state, under the
// store's lock.
type Service struct {
	store  *core.Store
	cfg    Config
	tokens map[string]*Token
	ttl    time.Duration // under the store's lock
}

// New serves cfg's accounts; tokens is the saved state's token table, which it fills.
func New(store *core.Store, cfg Config, tokens map[string]*Token) *Service {
	return &Service{store: store, cfg: cfg, tokens: tokens, ttl: cfg.TokenTTL}
}

// Route adds Identity v2.0 and Keystone v3 to mux.
func (s *Service) Route(mux *http.ServeMux) {
	mux.HandleFunc("POST /v2.0/tokens", s.createToken)
	mux.HandleFunc("GET /v2.0", s.identityVersion)
	mux.Handle("GET /v2.0/tenants", s.Authenticated(http.HandlerFunc(s.listTenants)))
	mux.Handle("GET /v2.0/tenants/{id}", s.Authenticated(http.HandlerFunc(s.getTenant)))
	mux.HandleFunc("GET /v2.0/{$}", s.identityVersion)
	mux.HandleFunc("/v2.0/", func(w http.ResponseWriter, r *http.Request) {
		core.Fail(w, 404, "The resource %s %s could not be found.", r.Method, r.URL.Path)
	})
	mux.HandleFunc("POST /v3/auth/tokens", s.createTokenV3)
	mux.HandleFunc("GET /v3", s.identityVersionV3)
	mux.HandleFunc("GET /v3/{$}", s.identityVersionV3)
}

// Authenticated answers 401 to a missing, unknown or expired X-Auth-Token and passes the
// caller's tenant on in the request (core.Caller reads it).
func (s *Service) Authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Auth-Token")
		if id == "" {
			core.Fail(w, 401, "This server could not verify that you are authorized to access the document you requested.")
			return
		}
		t := s.valid(id)
		if t == nil {
			core.Fail(w, 401, "The token provided is unknown or has expired.")
			return
		}
		next.ServeHTTP(w, core.WithCaller(r, t.Tenant))
	})
}

// valid is the token id names when it has not expired, else nil.
func (s *Service) valid(id string) *Token {
	s.store.Lock()
	t := s.tokens[id]
	s.store.Unlock()
	if t == nil || !time.Now().Before(t.Expires) {
		return nil
	}
	return t
}

// issue records a new token for tenant and answers its id and expiry.
func (s *Service) issue(tenant string, issued time.Time) (string, time.Time) {
	id := core.NewID()
	s.store.Lock()
	defer s.store.Unlock()
	expires := issued.Add(s.ttl).UTC()
	s.tokens[id] = &Token{Tenant: tenant, Expires: expires}
	s.pruneTokensLocked()
	s.store.Commit()
	return id, expires
}

// SetTokenTTL sets the lifetime of tokens issued from now on.
func (s *Service) SetTokenTTL(d time.Duration) {
	s.store.Lock()
	s.ttl = d
	s.store.Unlock()
}

// ResetTokenTTL restores the lifetime the service started with.
func (s *Service) ResetTokenTTL() { s.SetTokenTTL(s.cfg.TokenTTL) }

// ExpireTokens makes every issued token invalid at once, as if each reached its expiry.
func (s *Service) ExpireTokens() {
	s.store.Lock()
	clear(s.tokens)
	s.store.Commit()
	s.store.Unlock()
}

// Accounts returns the accounts identity serves.
func (s *Service) Accounts() []Account { return append([]Account(nil), s.cfg.Accounts...) }

func (s *Service) findAccount(username string) (Account, bool) {
	for _, a := range s.cfg.Accounts {
		if a.Username == username {
			return a, true
		}
	}
	return Account{}, false
}

// pruneTokensLocked drops expired tokens so state.json does not grow without bound.
func (s *Service) pruneTokensLocked() {
	n := time.Now()
	for id, t := range s.tokens {
		if n.After(t.Expires) {
			delete(s.tokens, id)
		}
	}
}
