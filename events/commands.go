package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/imageflow/imageflow/workflows"
)

// MemberStatus is the data of a member-status command: a consumer's decision on an offer,
// addressed (by the envelope's tenant) to the producer's worker.
type MemberStatus struct {
	ImageID         string `json:"image_id"`
	Region          string `json:"region"`
	Member          string `json:"member"`
	Status          string `json:"status"`
	ShareWorkflowID string `json:"share_workflow_id"`
}

// ShareOffered is the data of a share.offered fact.
type ShareOffered struct {
	ImageID         string `json:"image_id"`
	Region          string `json:"region"`
	Producer        string `json:"producer"`
	Member          string `json:"member"`
	ShareWorkflowID string `json:"share_workflow_id"`
}

// start is what a command asks of Temporal: a workflow start or a signal.
type start struct {
	workflow   string
	id         string
	input      any
	attrs      startAttrs
	signalTo   string // workflow id to signal instead of starting
	signalName string
}

type startAttrs struct {
	imageID, region string
	targets         []string
	members         []string
}

// command decodes and validates an event's data into what to do with it, for the worker of
// the route's tenant. The error is the reason the event is dead-lettered. configured is the
// worker's acceptance policy, which an accept command may only narrow.
func command(route Route, e Event, configured workflows.AcceptPolicy) (start, error) {
	tenant := route.Tenant
	switch "cmd." + route.Name {
	case "cmd." + CmdMigrate:
		in, err := decodeRequest[workflows.MigrateInput](e)
		if err == nil {
			err = workflows.CheckDeadline("migrate: deadline", in.Deadline, time.Now())
		}
		if err == nil {
			err = workflows.CheckNotOwner("migrate: share_with", tenant, in.ShareWith)
		}
		return migrateStart(tenant, in), err
	case "cmd." + CmdBulkMigrate:
		req, err := decodeRequest[workflows.BulkRequest](e)
		if err == nil {
			err = workflows.CheckDeadline("bulk-migrate: deadline", req.Deadline, time.Now())
		}
		return start{workflow: workflows.BulkMigrateWorkflow, id: workflows.BulkWorkflowID(tenant, req),
			input: workflows.BulkInput{BulkRequest: req},
			attrs: startAttrs{region: req.SourceRegion, targets: req.TargetRegions}}, err
	case "cmd." + CmdShare:
		in, err := decodeRequest[workflows.ShareInput](e)
		if err == nil {
			err = workflows.CheckNotOwner("share: members", tenant, in.Members)
		}
		return start{workflow: workflows.ShareImageWorkflow, id: workflows.ShareWorkflowID(tenant, in), input: in,
			attrs: startAttrs{imageID: in.ImageID, region: in.Region, members: in.Members}}, err
	case "cmd." + CmdDistribute:
		in, err := decodeRequest[workflows.DistributeInput](e)
		if err == nil {
			err = workflows.CheckDeadline("distribute: deadline", in.Deadline, time.Now())
		}
		if err == nil {
			err = workflows.CheckNotOwner("distribute: accounts", tenant, in.Accounts)
		}
		return start{workflow: workflows.DistributeImageWorkflow, id: workflows.DistributeWorkflowID(tenant, in),
			input: in, attrs: startAttrs{imageID: in.ImageID, region: in.SourceRegion, targets: in.Regions,
				members: in.Accounts}}, err
	case "cmd." + CmdAccept:
		in, err := decodeRequest[workflows.AcceptInput](e)
		if err == nil {
			in.Policy, err = in.Policy.Narrow(configured)
		}
		return acceptStart(tenant, in), err
	case "cmd." + CmdMemberStatus:
		var ms MemberStatus
		if err := e.decodeData(&ms); err != nil {
			return start{}, err
		}
		if ms.ShareWorkflowID == "" || ms.ImageID == "" || ms.Member == "" ||
			(ms.Status != "accepted" && ms.Status != "rejected") {
			return start{}, fmt.Errorf(
				"member-status needs image_id, member, share_workflow_id and status accepted or rejected",
			)
		}
		if ms.Member != route.Other {
			return start{}, fmt.Errorf("member-status for member %q came on the subject of member %q's decisions: "+
				"an account may only report its own", truncate(ms.Member, 64), route.Other)
		}
		if !strings.HasPrefix(ms.ShareWorkflowID, workflows.ShareIDPrefix(tenant)) {
			return start{}, fmt.Errorf(
				"member-status share_workflow_id %q is not a share of account %s; a decision may "+
					"only signal the addressed account's own shares",
				truncate(ms.ShareWorkflowID, 100),
				tenant,
			)
		}
		return start{signalTo: ms.ShareWorkflowID, signalName: workflows.MemberStatusSignal,
			input: workflows.MemberDecision{ImageID: ms.ImageID, Member: ms.Member, Status: ms.Status}}, nil
	}
	return start{}, fmt.Errorf("unknown command %q", route.Name)
}

// offerToAccept turns a share.offered fact into an AcceptShare start for the member its subject
// names. The subject also says who made the offer: an offer in another producer's name is
// refused.
func offerToAccept(e Event, route Route, policy workflows.AcceptPolicy) (start, error) {
	var o ShareOffered
	if err := e.decodeData(&o); err != nil {
		return start{}, err
	}
	tenant := route.Other
	if o.Member != tenant || o.Producer != route.Tenant {
		return start{}, fmt.Errorf("offer of producer %q to member %q came on a subject of producer %s for member %s: "+
			"an offer must come from its producer's worker and name its member", truncate(o.Producer, 64),
			truncate(o.Member, 64), route.Tenant, tenant)
	}
	in := workflows.AcceptInput{
		Region:          o.Region,
		ImageID:         o.ImageID,
		Producer:        o.Producer,
		Policy:          policy,
		ShareWorkflowID: o.ShareWorkflowID,
	}
	if err := in.Normalize(); err != nil {
		return start{}, err
	}
	return acceptStart(tenant, in), nil
}

// normalizer is a request that checks itself and fills its defaults.
type normalizer interface{ Normalize() error }

// decodeRequest reads an event's data, strictly, into a request of type T and normalizes it.
func decodeRequest[T any, P interface {
	*T
	normalizer
}](e Event) (T, error) {
	var in T
	if err := e.decodeData(P(&in)); err != nil {
		return in, err
	}
	return in, P(&in).Normalize()
}

func migrateStart(tenant string, in workflows.MigrateInput) start {
	return start{workflow: workflows.MigrateImageWorkflow, id: workflows.MigrateWorkflowID(tenant, in), input: in,
		attrs: startAttrs{
			imageID: in.ImageID,
			region:  in.SourceRegion,
			targets: in.TargetRegions,
			members: in.ShareWith,
		}}
}

func acceptStart(tenant string, in workflows.AcceptInput) start {
	return start{workflow: workflows.AcceptShareWorkflow, id: workflows.AcceptWorkflowID(tenant, in), input: in,
		attrs: startAttrs{imageID: in.ImageID, region: in.Region, members: []string{tenant}}}
}

// decodeData reads the event's data into v, refusing fields v does not have, so a typo in an
// event is reported instead of silently ignored.
func (e Event) decodeData(v any) error {
	if err := checkKeys(e.Data, reflect.TypeOf(v)); err != nil {
		return fmt.Errorf("%s data: %v", e.Type, err)
	}
	dec := json.NewDecoder(bytes.NewReader(e.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var pe *time.ParseError
		if errors.As(err, &pe) { // encoding/json does not say which field held the bad time
			return fmt.Errorf("%s data: %s %q is not an RFC 3339 time (e.g. 2026-11-28T18:00:00Z)", e.Type,
				keyHolding(e.Data, pe.Value), pe.Value)
		}
		return fmt.Errorf("%s data: %v", e.Type, err)
	}
	return nil
}

// keyHolding names the key (dotted, for nested objects) whose string value is value.
func keyHolding(data json.RawMessage, value string) string {
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return "a time field"
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		switch v := m[k].(type) {
		case string:
			if v == value {
				return k
			}
		case map[string]any:
			if inner, _ := json.Marshal(v); keyHolding(inner, value) != "a time field" {
				return k + "." + keyHolding(inner, value)
			}
		}
	}
	return "a time field"
}
