package events

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Permissions are what one NATS user may publish and subscribe to: a nats-server
// authorization's allow lists. Everything else is denied.
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// The three kinds of users a tenant's NATS account has. A worker reads its account's commands
// and the offers made to it, and announces its facts, its dead letters and its decisions on
// others' offers; a sender (the starter, a build pipeline) sends the account's commands and hears
// its facts and dead letters; the admin (an operator, devstack) sets the account's stream up.
// Each account is its own subject space with its own stream, so no user of one can name, count
// or read anything of another's: see AccountsConfig.
const (
	RoleWorker = "worker"
	RoleSender = "sender"
	RoleAdmin  = "admin"
)

// SenderVerbs are the commands a sender may send; member-status is a worker's to send.
var SenderVerbs = []string{CmdMigrate, CmdBulkMigrate, CmdShare, CmdDistribute, CmdAccept}

// WorkerPermissions are the rights a worker of tenant needs in its account, and no more. Its
// durable consumers are named "imageflow-<tenant>" and "imageflow-<tenant>-offers" (the
// defaults). It may not create, change or delete the stream: that is the admin's.
func WorkerPermissions(s Subjects, stream, tenant string) Permissions {
	cons, offers := "imageflow-"+tenant, "imageflow-"+tenant+"-offers"
	api := "$JS.API."
	return Permissions{
		Publish: []string{
			s.Facts(tenant),
			s.DeadLetters(tenant),
			s.MemberStatus("*", tenant),
			api + "INFO",
			api + "STREAM.INFO." + stream,
			// Its stream holds only its account's messages, so it may read any by sequence: the
			// original of an event given up on after max deliveries goes into its dead letter.
			api + "DIRECT.GET." + stream,
			// The filter is part of a consumer's create subject, so these allow exactly the
			// worker's own consumers over its own subjects.
			api + "CONSUMER.CREATE." + stream + "." + cons + "." + s.Commands(tenant),
			api + "CONSUMER.CREATE." + stream + "." + offers + "." + s.OffersTo(tenant),
			api + "CONSUMER.INFO." + stream + "." + cons,
			api + "CONSUMER.INFO." + stream + "." + offers,
			api + "CONSUMER.MSG.NEXT." + stream + "." + cons,
			api + "CONSUMER.MSG.NEXT." + stream + "." + offers,
			"$JS.ACK." + stream + "." + cons + ".>",
			"$JS.ACK." + stream + "." + offers + ".>",
		},
		Subscribe: []string{
			InboxPrefix(tenant) + ".>",
			"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + stream + "." + cons,
			"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + stream + "." + offers,
		},
	}
}

// SenderPermissions are the rights a sender of tenant's commands needs in its account: send them,
// learn whether a worker reads them, read their dead letters (by subject, or by sequence as the
// nats CLI does: the account's stream holds only the account's own messages), and hear the
// account's facts and the offers made to it.
func SenderPermissions(s Subjects, stream, tenant string) Permissions {
	p := Permissions{Subscribe: []string{InboxPrefix(tenant) + ".>", s.Facts(tenant), s.OffersTo(tenant),
		s.DeadLetters(tenant)}}
	for _, verb := range SenderVerbs {
		p.Publish = append(p.Publish, s.Cmd(tenant, verb))
	}
	p.Publish = append(p.Publish,
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO."+stream,
		"$JS.API.CONSUMER.INFO."+stream+".imageflow-"+tenant,
		"$JS.API.DIRECT.GET."+stream+"."+s.DeadLetters(tenant),
		"$JS.API.STREAM.MSG.GET."+stream,
	)
	return p
}

// UserName is the NATS user of role for tenant, e.g. "worker-100001". User names are unique in
// a server, so the admin of each account has its own ("admin-100001").
func UserName(role, tenant string) string { return role + "-" + tenant }

// AccountName is tenant's NATS account, e.g. "IMAGEFLOW_100001".
func AccountName(tenant string) string { return "IMAGEFLOW_" + tenant }

// PasswordVar is the environment variable nats-server reads a user's password from when it
// loads the configuration, so the file holds no secret: e.g. NATS_PASSWORD_WORKER_100001. They
// are nats-server's, not imageflow's, so they do not start with IMAGEFLOW_ (a worker refuses
// IMAGEFLOW_ variables it does not know, and an env file may be shared by both).
func PasswordVar(role, tenant string) string {
	return "NATS_PASSWORD_" + strings.ToUpper(role) + "_" + tenant
}

// AdminPasswordVar holds the password of every account's admin user: the operator's.
const AdminPasswordVar = "NATS_PASSWORD_ADMIN"

// AccountsConfig is a nats-server accounts block for tenants: one account each, with JetStream,
// its admin, worker and sender, and the only two things that cross accounts: offers (a
// producer's share.offered for a member, exported to the member's account alone) and decisions
// (a member's member-status for a producer, exported to the producer's account alone). Imports
// are written here, by the operator, so no tenant can reach for another's subjects. Passwords
// come from the environment (PasswordVar, AdminPasswordVar).
func AccountsConfig(s Subjects, stream string, tenants []string) string {
	var b strings.Builder
	b.WriteString("# imageflow's NATS accounts: each tenant's is its own subject space with its own stream;\n")
	b.WriteString("# only offers and decisions cross, each to the one account it names. Passwords are read\n")
	b.WriteString("# from the environment when nats-server loads this file.\n")
	b.WriteString("accounts {\n")
	for _, t := range tenants {
		fmt.Fprintf(&b, "  %s {\n    jetstream: enabled\n    users = [\n", AccountName(t))
		fmt.Fprintf(&b, "      {user: %s, password: $%s}\n", UserName(RoleAdmin, t), AdminPasswordVar)
		for _, role := range []string{RoleWorker, RoleSender} {
			p := WorkerPermissions(s, stream, t)
			if role == RoleSender {
				p = SenderPermissions(s, stream, t)
			}
			fmt.Fprintf(&b, "      {user: %s, password: $%s, permissions: {\n", UserName(role, t), PasswordVar(role, t))
			fmt.Fprintf(&b, "        publish: {allow: %s}\n", quoteList(p.Publish))
			fmt.Fprintf(&b, "        subscribe: {allow: %s}\n", quoteList(p.Subscribe))
			b.WriteString("      }}\n")
		}
		b.WriteString("    ]\n")
		writeCrossings(&b, s, t, tenants)
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// writeCrossings writes tenant's exports (its offers to each other tenant, its decisions on each
// other tenant's offers, each to that tenant's account only) and the matching imports.
func writeCrossings(b *strings.Builder, s Subjects, tenant string, tenants []string) {
	var exports, imports []string
	for _, o := range tenants {
		if o == tenant {
			continue
		}
		for _, subj := range []string{s.Offer(tenant, o), s.MemberStatus(o, tenant)} {
			exports = append(exports, fmt.Sprintf("{stream: %q, accounts: [%s]}", subj, AccountName(o)))
		}
		for _, subj := range []string{s.Offer(o, tenant), s.MemberStatus(tenant, o)} {
			imports = append(imports, fmt.Sprintf("{stream: {account: %s, subject: %q}}", AccountName(o), subj))
		}
	}
	if len(exports) == 0 {
		return
	}
	fmt.Fprintf(b, "    exports = [\n      %s\n    ]\n", strings.Join(exports, "\n      "))
	fmt.Fprintf(b, "    imports = [\n      %s\n    ]\n", strings.Join(imports, "\n      "))
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = `"` + x + `"`
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// SetUpAccounts is the operator's step for AccountsConfig: as each tenant's admin (password
// adminPassword) it makes the tenant's stream. Workers and senders may not; a worker that finds
// its stream missing says so and exits.
func SetUpAccounts(ctx context.Context, url string, s Subjects, stream string, replicas int, tenants []string,
	adminPassword string) error {
	for _, t := range tenants {
		nc, err := nats.Connect(url, nats.UserInfo(UserName(RoleAdmin, t), adminPassword),
			nats.Name("imageflow-setup"))
		if err != nil {
			return fmt.Errorf("set up account %s: connect as %s: %w", AccountName(t), UserName(RoleAdmin, t), err)
		}
		js, err := jetstream.New(nc)
		if err == nil {
			_, err = EnsureStream(ctx, js, stream, s, replicas)
		}
		nc.Close()
		if err != nil {
			return fmt.Errorf("set up account %s: %w", AccountName(t), err)
		}
	}
	return nil
}
