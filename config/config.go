// Package config holds imageflow's settings, read from IMAGEFLOW_* environment variables with
// envconfig: Temporal, NATS, the cloud account and worker tuning. Load validates everything at
// start and names the variable that is wrong.
package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Prefix of every variable.
const Prefix = "IMAGEFLOW"

// Temporal says where the workflows run.
type Temporal struct {
	Address       string `split_words:"true" default:"localhost:7233" desc:"Temporal frontend host:port"`
	Namespace     string `split_words:"true" default:"default"        desc:"Temporal namespace"`
	TaskQueue     string `split_words:"true" default:"imageflow"      desc:"task queue this worker serves; one account per queue"`
	TLSCert       string `split_words:"true"                          desc:"client certificate file for mTLS"`
	TLSKey        string `split_words:"true"                          desc:"client key file for mTLS"`
	CAFile        string `split_words:"true"                          desc:"CA bundle to verify the Temporal server (default: system roots)"`
	TLSServerName string `split_words:"true"                          desc:"server name to verify, when it differs from the address"`
	TLS           bool   `split_words:"true"                          desc:"use TLS even without certificate files (Temporal Cloud with an API key)"`
	APIKey        Secret `split_words:"true"                          desc:"Temporal API key: Temporal Cloud's (implies TLS), or a tenant's on a server that keeps tenants apart"`
	Plaintext     bool   `split_words:"true"                          desc:"send the API key over plain gRPC (devstack --isolated on this machine; never across a network)"`
}

// NATS says where events come from and go to.
type NATS struct {
	URL            string        `split_words:"true" default:"nats://localhost:4222" desc:"NATS server URL(s), comma-separated"`
	User           string        `split_words:"true"                                 desc:"NATS user"`
	Password       Secret        `split_words:"true"                                 desc:"NATS password"`
	CredsFile      string        `split_words:"true"                                 desc:"NATS credentials file (JWT and NKey)"`
	TLSCert        string        `split_words:"true"                                 desc:"client certificate file for NATS TLS"`
	TLSKey         string        `split_words:"true"                                 desc:"client key file for NATS TLS"`
	CAFile         string        `split_words:"true"                                 desc:"CA bundle to verify the NATS server"`
	SubjectPrefix  string        `split_words:"true" default:"imageflow"             desc:"subject prefix: <prefix>.cmd.*, <prefix>.evt.*, <prefix>.dlq.<stream seq>"`
	Stream         string        `split_words:"true" default:"IMAGEFLOW"             desc:"JetStream stream holding commands and events"`
	StreamReplicas int           `split_words:"true" default:"1"                     desc:"the stream's replicas in a NATS cluster (3 in production: a node lost loses no event)"`
	MaxDeliver     int           `split_words:"true" default:"5"                     desc:"deliveries of one event before it is dead-lettered"`
	AckWait        time.Duration `split_words:"true" default:"30s"                   desc:"time to handle an event before it is redelivered"`
	MaxBacklog     int64         `split_words:"true" default:"1000"                  desc:"workflow tasks waiting on the worker's queue from which events stay in the stream (0: never held)"`
	Disabled       bool          `split_words:"true"                                 desc:"run without NATS: no event bridge, facts are only logged"`
}

// Cloud is the account the worker acts as. Every job runs with these credentials only.
type Cloud struct {
	Name              string        `split_words:"true"                                                         desc:"a cloud of clouds.yaml (default: OS_CLOUD when no account variable is set); when set, the account comes from there and the account variables stay unset"`
	IdentityURL       string        `split_words:"true" default:"https://identity.api.rackspacecloud.com/v2.0/" desc:"Identity v2.0 endpoint, or a Keystone v3 one (ending in /v3)"`
	Username          string        `split_words:"true"                                                         desc:"account username (required unless an application credential is given)"`
	APIKey            Secret        `split_words:"true"                                                         desc:"Rackspace API key (v2.0; this or the password)"`
	Password          Secret        `split_words:"true"                                                         desc:"account password"`
	UserDomainName    string        `split_words:"true"                                                         desc:"v3: the user's domain (default Default)"`
	ProjectID         string        `split_words:"true"                                                         desc:"v3: the project to scope to (or by name, below)"`
	ProjectName       string        `split_words:"true"                                                         desc:"v3: the project to scope to, by name"`
	ProjectDomainName string        `split_words:"true"                                                         desc:"v3: the project's domain (default Default)"`
	AppCredentialID   string        `envconfig:"APPLICATION_CREDENTIAL_ID"                                      desc:"v3: an application credential, instead of user and password"`
	AppCredentialKey  Secret        `envconfig:"APPLICATION_CREDENTIAL_SECRET"                                  desc:"v3: the application credential's secret"`
	Peers             []string      `split_words:"true"                                                        desc:"other clouds or accounts to migrate into: clouds.yaml names (comma-separated); requests name them as target_cloud"`
	RequestsPerSecond float64       `split_words:"true" default:"10"                                            desc:"client-side pacing per region; 0 for none"`
	IdleTimeout       time.Duration `split_words:"true" default:"60s"                                      desc:"cut and retry a streamed transfer that moves no byte for this long"`
	MaxImportSize     int64         `split_words:"true" default:"160000000000"                             desc:"largest image an import task takes (Cloud Images: 160 GB); a migration refuses a larger one up front for regions that import by task; 0 for no limit"`
}

// Worker tunes the worker process.
type Worker struct {
	ActivityConcurrency int `split_words:"true" default:"32"        desc:"activities run at once"`
	// WorkflowCacheSize bounds the runs kept in memory between their events: a run evicted is
	// replayed from its history when it next hears something (a share's ~25 events take
	// milliseconds), so thousands of waiting shares need not all stay resident.
	WorkflowCacheSize   int           `split_words:"true" default:"2000" desc:"runs kept in memory between their events (others are replayed when they next hear something)"`
	Profiles            bool          `split_words:"true" default:"false"     desc:"also serve Go's profiles at /debug/pprof/ on the HTTP address (diagnosis; keep that address private)"`
	CopyParallelism     int           `split_words:"true" default:"0"         desc:"parallel segment transfers per cross-region copy; 0 tunes them to the link while each copy runs"`
	CopyMaxParallelism  int           `split_words:"true" default:"16"        desc:"ceiling of tuned parallelism (bounds each copy's connections and memory)"`
	CopySegmentSize     int64         `split_words:"true" default:"1073741824" desc:"largest copied segment: source segments up to this size are copied whole and verified by their ETag"`
	CopyVerify          bool          `split_words:"true"                     desc:"re-read each copy at the target to check its whole MD5"`
	LineageRangeSize    int64         `split_words:"true" default:"33554432"  desc:"bytes per range of incremental (lineage) copies: smaller finds more unchanged bytes when changes are scattered, larger reads faster from Swift (at least 1048576)"`
	StageMinSize        int64         `split_words:"true" default:"1073741824" desc:"smallest image an upload into a generic region with Swift stages there in resumable pieces (smaller ones stream); 0 stages all"`
	EstimateCopyRate    float64       `split_words:"true" default:"52428800"  desc:"bytes/s a cross-region copy is assumed to move, until the worker has measured its own"`
	EstimateTaskRate    float64       `split_words:"true" default:"20971520"  desc:"bytes/s an export or import task is assumed to run at, until measured"`
	TaskPollInterval    time.Duration `split_words:"true" default:"30s"       desc:"first wait between polls of an export/import task (Rackspace asks for 30s)"`
	TaskPollMaxInterval time.Duration `split_words:"true" default:"2m"        desc:"longest wait between task polls"`
	HTTPAddr            string        `split_words:"true" default:":9090"     desc:"address of /healthz and /metrics; empty to disable"`
	LogLevel            string        `split_words:"true" default:"info"      desc:"debug, info, warn or error"`
	AutoAccept          bool          `split_words:"true"                     desc:"run AcceptShare for offers made to this account"`
	TrustedProducers    []string      `split_words:"true"                     desc:"tenants whose offers AcceptShare accepts (comma-separated)"`
	AcceptNamePattern   string        `split_words:"true"                     desc:"shell pattern an offered image's name must match to be accepted"`
	StopTimeout         time.Duration `split_words:"true" default:"30s"       desc:"how long a stopping worker waits for running activities"`
	WaitNoticeAfter     time.Duration `split_words:"true" default:"10m"       desc:"announce a step waiting out a fault this long (a job.waiting fact), and each time the wait doubles"`
	HostProbeEvery      time.Duration `split_words:"true" default:"5s"        desc:"how often one probe asks a region's service (or identity) that keeps failing whether it answers again; the worker's requests for it wait, unsent, meanwhile"`
}

// Config is everything.
type Config struct {
	Temporal Temporal
	NATS     NATS
	Cloud    Cloud
	Worker   Worker
}

// Secret is a string that never prints itself.
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString hides the value from %#v too.
func (s Secret) GoString() string { return s.String() }

// Value is the secret itself, for the one place that sends it.
func (s Secret) Value() string { return string(s) }

// Load reads the environment, rejecting unknown IMAGEFLOW_* variables and malformed values.
// The worker needs the cloud account; see LoadWithoutAccount for tools that may not.
func Load() (Config, error) {
	c, err := LoadWithoutAccount()
	if err != nil {
		return c, err
	}
	return c, c.Validate()
}

// LoadWithoutAccount is Load without requiring cloud credentials (the starter asks Temporal or
// NATS to run jobs, and needs the account only to read the cloud directly).
func LoadWithoutAccount() (Config, error) {
	var c Config
	if err := checkUnknown(); err != nil {
		return c, err
	}
	if err := envconfig.Process(Prefix, &c); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return c, fmt.Errorf("%s=%q is not a valid %s", pe.KeyName, pe.Value, pe.TypeName)
		}
		return c, err
	}
	c.Cloud.useOSCloud()
	if err := c.validateCommon(); err != nil {
		return c, err
	}
	return c, nil
}

// Validate checks what envconfig cannot, the cloud account included.
func (c Config) Validate() error {
	var errs []string
	if _, err := c.Cloud.Credentials(); err != nil {
		errs = append(errs, err.Error())
	}
	if err := c.validateCommon(); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func (c Config) validateCommon() error {
	var errs []string
	if (c.Temporal.TLSCert == "") != (c.Temporal.TLSKey == "") {
		errs = append(errs, "IMAGEFLOW_TEMPORAL_TLS_CERT and IMAGEFLOW_TEMPORAL_TLS_KEY go together")
	}
	if (c.NATS.TLSCert == "") != (c.NATS.TLSKey == "") {
		errs = append(errs, "IMAGEFLOW_NATS_TLS_CERT and IMAGEFLOW_NATS_TLS_KEY go together")
	}
	if c.NATS.StreamReplicas < 1 || c.NATS.StreamReplicas > 5 {
		errs = append(errs, "IMAGEFLOW_NATS_STREAM_REPLICAS must be 1 to 5 (JetStream's limit)")
	}
	if c.NATS.MaxBacklog < 0 {
		errs = append(errs, "IMAGEFLOW_NATS_MAX_BACKLOG must be 0 (never hold events) or more")
	}
	if err := c.Cloud.checkIdentityURL(); err != nil {
		errs = append(errs, err.Error())
	}
	if c.NATS.MaxDeliver < 1 {
		errs = append(errs, "IMAGEFLOW_NATS_MAX_DELIVER must be at least 1")
	}
	if c.Worker.CopyParallelism < 0 || c.Worker.CopyMaxParallelism < 1 || c.Worker.CopySegmentSize < 1<<20 {
		errs = append(errs, "IMAGEFLOW_WORKER_COPY_PARALLELISM must be 0 (tuned) or more, "+
			"IMAGEFLOW_WORKER_COPY_MAX_PARALLELISM at least 1 and IMAGEFLOW_WORKER_COPY_SEGMENT_SIZE at least 1048576")
	}
	if c.Worker.WorkflowCacheSize < 1 {
		errs = append(errs, "IMAGEFLOW_WORKER_WORKFLOW_CACHE_SIZE must be at least 1")
	}
	switch strings.ToLower(c.Worker.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(
			errs,
			fmt.Sprintf("IMAGEFLOW_WORKER_LOG_LEVEL=%q is not debug, info, warn or error", c.Worker.LogLevel),
		)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// Vars lists every variable with its default and meaning, in declaration order.
func Vars() []Var {
	var out []Var
	walk(Prefix, &Config{}, &out)
	return out
}

// Var describes one variable.
type Var struct {
	Name, Type, Default, Desc string
}

// NotSettings are IMAGEFLOW_* variables that belong to the project's tools, not to the worker:
// a shell that runs the long tests exports IMAGEFLOW_LONG_TESTS (or, for Temporal on PostgreSQL,
// IMAGEFLOW_TEST_TEMPORAL_POSTGRES), and the workers those tests start inherit it. They are
// accepted and ignored.
var NotSettings = []string{"IMAGEFLOW_LONG_TESTS", "IMAGEFLOW_TEST_TEMPORAL_POSTGRES"}

func checkUnknown() error {
	known := map[string]bool{}
	for _, n := range NotSettings {
		known[n] = true
	}
	for _, v := range Vars() {
		known[v.Name] = true
	}
	var unknown []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, Prefix+"_") && !known[name] {
			if s := suggest(name, known); s != "" {
				name += " (did you mean " + s + "?)"
			}
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		return fmt.Errorf("unknown variable %s (see `go run ./worker -h` for the list)", strings.Join(unknown, ", "))
	}
	return nil
}

const varsFormat = "{{range .}}{{usage_key .}}\t{{usage_type .}}\t{{usage_default .}}\t{{usage_description .}}\n{{end}}"

// walk asks envconfig itself for the variable names, so the list never drifts from Load.
func walk(prefix string, spec any, out *[]Var) {
	var b strings.Builder
	if err := envconfig.Usagef(prefix, spec, &b, varsFormat); err != nil {
		panic(err) // the spec is a constant; a failure is a programming error
	}
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		f := strings.SplitN(line, "\t", 4)
		if len(f) < 4 || strings.Count(f[0], "_") < 2 {
			continue // the section structs themselves
		}
		*out = append(*out, Var{Name: f[0], Type: f[1], Default: f[2], Desc: f[3]})
	}
}

// Usage prints every variable with its default and meaning.
func Usage(w interface{ Write([]byte) (int, error) }) {
	fmt.Fprintf(w, "Configuration comes from the environment:\n\n")
	for _, v := range Vars() {
		def := v.Default
		if def == "" {
			def = "(none)"
		}
		fmt.Fprintf(w, "  %-40s %s\n      default %s\n", v.Name, v.Desc, def)
	}
}

// Markdown is the configuration table for the README.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n| --- | --- | --- |\n")
	for _, v := range Vars() {
		def := v.Default
		if def != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, v.Desc)
	}
	return b.String()
}
