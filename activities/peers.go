package activities

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// A worker acts as one account (its own cloud) and may hold other named clouds or accounts
// (Config.Peers, from clouds.yaml) to migrate into. Requests name a peer, never its credentials;
// the target-side activities run as it.

// as is these activities acting as the named peer ("" is the worker's own account).
func (a *Activities) as(name string) (*Activities, error) {
	if name == "" {
		return a, nil
	}
	c, ok := a.cfg.Peers[name]
	if !ok {
		return nil, nonRetryable(ErrInvalid, fmt.Sprintf("this worker holds no cloud named %q (it holds: %s)", name,
			orNone(slices.Sorted(maps.Keys(a.cfg.Peers)))))
	}
	peer := *a
	peer.cloud = c
	return &peer, nil
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none; set IMAGEFLOW_CLOUD_PEERS"
	}
	return strings.Join(names, ", ")
}
