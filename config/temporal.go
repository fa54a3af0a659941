package config

import (
	"crypto/tls"

	"go.temporal.io/sdk/client"

	"github.com/imageflow/imageflow/internal/tracing"
)

// ClientOptions are the Temporal client options for this configuration: mTLS from files, or TLS
// with an API key (Temporal Cloud), or plain gRPC for a local server.
func (t Temporal) ClientOptions() (client.Options, error) {
	o := client.Options{HostPort: t.Address, Namespace: t.Namespace}
	if t.TLSCert != "" || t.CAFile != "" || t.TLS || (t.APIKey != "" && !t.Plaintext) {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if t.TLSCert != "" || t.CAFile != "" {
			var err error
			if tc, err = ClientTLS(t.TLSCert, t.TLSKey, t.CAFile); err != nil {
				return o, err
			}
		}
		tc.ServerName = t.TLSServerName
		o.ConnectionOptions.TLS = tc
	}
	if t.APIKey != "" {
		o.Credentials = client.NewAPIKeyStaticCredentials(t.APIKey.Value())
		o.ConnectionOptions.TLSDisabled = o.ConnectionOptions.TLS == nil
	}
	if tracing.Enabled() { // off, a run's header carries no trace and nothing is intercepted
		ti, err := tracing.Interceptor()
		if err != nil {
			return o, err
		}
		o.Interceptors = append(o.Interceptors, ti)
	}
	return o, nil
}
