package devserver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	pgplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	pgschema "go.temporal.io/server/schema/postgresql/v12"
	"go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
	"google.golang.org/protobuf/types/known/durationpb"
)

// postgresStores reads a PostgreSQL URL (postgres://user:password@host:port/database) into
// Temporal's two stores: the database named, and <database>_visibility beside it.
func postgresStores(raw string) (main, vis *config.SQL, err error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, nil, fmt.Errorf("PostgreSQL URL %q: want postgres://user:password@host:port/database",
			redactURL(raw))
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		db = "temporal"
	}
	pass, _ := u.User.Password()
	attrs := map[string]string{}
	for k, v := range u.Query() {
		attrs[k] = v[0]
	}
	main = &config.SQL{PluginName: pgplugin.PluginName, DatabaseName: db, ConnectAddr: u.Host,
		ConnectProtocol: "tcp", User: u.User.Username(), Password: pass, ConnectAttributes: attrs,
		MaxConns: 20, MaxIdleConns: 20}
	v := *main
	v.DatabaseName = db + "_visibility"
	return main, &v, nil
}

// redactURL drops a URL's password for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// preparePostgres creates a store's database and schema when they are missing; a database
// that already has Temporal's schema is left as it is, so a restart keeps every workflow.
func preparePostgres(cfg *config.SQL, schemaName, version string) error {
	logger := log.NewNoopLogger()
	if conn, err := sqltool.NewConnection(cfg, logger); err == nil {
		_, verr := conn.ReadSchemaVersion()
		conn.Close()
		if verr == nil {
			return nil
		}
	}
	create := *cfg
	if err := sqltool.DoCreateDatabase(&create, "postgres", logger); err != nil &&
		!strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("create database %s: %w", cfg.DatabaseName, err)
	}
	conn, err := sqltool.NewConnection(cfg, logger)
	if err != nil {
		return fmt.Errorf("connect to database %s: %w", cfg.DatabaseName, err)
	}
	defer conn.Close()
	task := schema.NewSetupSchemaTask(conn, &schema.SetupConfig{SchemaName: schemaName, InitialVersion: version},
		logger)
	if err := task.Run(); err != nil {
		return fmt.Errorf("set up Temporal's schema in %s: %w", cfg.DatabaseName, err)
	}
	return nil
}

// postgresPersistence prepares both stores and returns the server's persistence settings.
func postgresPersistence(raw string) (config.Persistence, error) {
	main, vis, err := postgresStores(raw)
	if err != nil {
		return config.Persistence{}, err
	}
	if err := preparePostgres(main, "postgresql/v12/temporal", pgschema.Version); err != nil {
		return config.Persistence{}, err
	}
	if err := preparePostgres(vis, "postgresql/v12/visibility", pgschema.VisibilityVersion); err != nil {
		return config.Persistence{}, err
	}
	return config.Persistence{DefaultStore: "postgres", VisibilityStore: "postgres-visibility",
		NumHistoryShards: 4, DataStores: map[string]config.DataStore{
			"postgres": {SQL: main}, "postgres-visibility": {SQL: vis}}}, nil
}

// registerNamespace creates the namespace through the frontend, as an operator would on a
// Temporal cluster (the SQLite path writes it into the file before the start instead).
func registerNamespace(ctx context.Context, svc workflowservice.WorkflowServiceClient, name string) error {
	_, err := svc.RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: name, WorkflowExecutionRetentionPeriod: durationpb.New(72 * time.Hour)})
	var exists *serviceerror.NamespaceAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("register namespace %s: %w", name, err)
	}
	return nil
}
