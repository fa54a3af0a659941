package events

import (
	"fmt"
	"strings"
)

// Permissions are what one NATS user may publish and subscribe to: a nats-server
// authorization's allow lists. Everything else is denied.
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// The two kinds of users an account has. A worker reads its account's commands and the offers
// made to it, and announces its facts, its dead letters and its decisions on others' offers; a
// sender (the starter, a build pipeline) sends the account's commands and hears its facts and
// dead letters. Neither can read or write another account's subjects, nor create a consumer
// over them, nor read the stream by sequence.
const (
	RoleWorker = "worker"
	RoleSender = "sender"
)

// SenderVerbs are the commands a sender may send; member-status is a worker's to send.
var SenderVerbs = []string{CmdMigrate, CmdBulkMigrate, CmdShare, CmdDistribute, CmdAccept}

// WorkerPermissions are the rights a worker of tenant needs on stream, and no more. Its durable
// consumers are named "imageflow-<tenant>" and "imageflow-<tenant>-offers" (the defaults).
func WorkerPermissions(s Subjects, stream, tenant string) Permissions {
	cons, offers := "imageflow-"+tenant, "imageflow-"+tenant+"-offers"
	api := "$JS.API."
	return Permissions{
		Publish: []string{
			s.Facts(tenant),
			s.DeadLetters(tenant),
			s.MemberStatus("*", tenant),
			api + "STREAM.INFO." + stream,
			// Creating the stream when it is missing exposes nothing; updating it is an operator's.
			api + "STREAM.CREATE." + stream,
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

// SenderPermissions are the rights a sender of tenant's commands needs on stream: send them,
// learn whether a worker reads them, read their dead letters, and hear the account's facts and
// the offers made to it.
func SenderPermissions(s Subjects, stream, tenant string) Permissions {
	p := Permissions{Subscribe: []string{InboxPrefix(tenant) + ".>", s.Facts(tenant), s.OffersTo(tenant),
		s.DeadLetters(tenant)}}
	for _, verb := range SenderVerbs {
		p.Publish = append(p.Publish, s.Cmd(tenant, verb))
	}
	p.Publish = append(p.Publish,
		"$JS.API.STREAM.INFO."+stream,
		"$JS.API.CONSUMER.INFO."+stream+".imageflow-"+tenant,
		// A direct get names the subject it reads: only the account's dead letters.
		"$JS.API.DIRECT.GET."+stream+"."+s.DeadLetters(tenant),
	)
	return p
}

// UserName is the NATS user of role for tenant, e.g. "worker-100001".
func UserName(role, tenant string) string { return role + "-" + tenant }

// PasswordVar is the environment variable the authorization reads a user's password from, so
// the configuration holds no secret: e.g. IMAGEFLOW_NATS_PASSWORD_WORKER_100001.
func PasswordVar(role, tenant string) string {
	return "IMAGEFLOW_NATS_PASSWORD_" + strings.ToUpper(role) + "_" + tenant
}

// AdminPasswordVar holds the password of the "admin" user, who may do anything (an operator
// with the nats CLI, or whoever sets the stream up).
const AdminPasswordVar = "IMAGEFLOW_NATS_PASSWORD_ADMIN"

// AuthorizationConfig is a nats-server authorization block for tenants: a worker and a sender
// user each, and admin. Passwords come from the environment (PasswordVar, AdminPasswordVar),
// which nats-server reads when it loads the file.
func AuthorizationConfig(s Subjects, stream string, tenants []string) string {
	var b strings.Builder
	b.WriteString("# imageflow's NATS users: each account's worker and sender see only that account's\n")
	b.WriteString("# subjects. Passwords are read from the environment when nats-server loads this file.\n")
	b.WriteString("authorization {\n  users = [\n")
	fmt.Fprintf(&b, "    {user: admin, password: $%s}\n", AdminPasswordVar)
	for _, t := range tenants {
		for _, role := range []string{RoleWorker, RoleSender} {
			p := WorkerPermissions(s, stream, t)
			if role == RoleSender {
				p = SenderPermissions(s, stream, t)
			}
			fmt.Fprintf(&b, "    {user: %s, password: $%s, permissions: {\n", UserName(role, t), PasswordVar(role, t))
			fmt.Fprintf(&b, "      publish: {allow: %s}\n", quoteList(p.Publish))
			fmt.Fprintf(&b, "      subscribe: {allow: %s}\n", quoteList(p.Subscribe))
			b.WriteString("    }}\n")
		}
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = `"` + x + `"`
	}
	return "[" + strings.Join(q, ", ") + "]"
}
