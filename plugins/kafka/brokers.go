package main

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// brokerConn is one broker of a cluster target (connection.brokers).
type brokerConn struct {
	NodeID         int      `json:"node_id" schema:"required,minimum=0"`
	ConfigFile     string   `json:"config_file" schema:"required"`
	RestartCommand []string `json:"restart_command" schema:"minItems=1"`
}

// brokerSpec is one broker's listeners after hardening (spec.brokers).
type brokerSpec struct {
	NodeID    int            `json:"node_id" schema:"required,minimum=0"`
	Listeners []listenerSpec `json:"listeners" schema:"required" jsonschema:"the broker's listeners after hardening, all SSL"`
}

// Migration phases of a running cluster from PLAINTEXT to SSL. Each phase
// is applied broker by broker (rolling restarts gated on zero
// under-replicated partitions), and every mix of two adjacent phases works:
//
//   - add-tls: the SSL listeners (broker and controller) join the existing
//     ones; inter-broker and controller traffic stay as they are.
//   - switch: inter-broker and controller traffic move to the SSL listeners
//     (controller.listener.names puts them first, the voters' endpoints
//     follow); clients move to the SSL bootstrap servers now.
//   - tls-only (the default, the end state): the old listeners are removed
//     and, under mTLS, the authorizer is switched on.
const (
	phaseAddTLS  = "add-tls"
	phaseSwitch  = "switch"
	phaseTLSOnly = "tls-only"
)

type migration struct {
	Phase string `json:"phase" schema:"enum=add-tls|switch|tls-only" jsonschema:"rolling PLAINTEXT→SSL migration: add-tls (SSL listeners beside the old ones), switch (inter-broker and controller traffic to SSL; move clients), tls-only (old listeners removed; the default)"`
}

func (s spec) phase() string {
	if s.Migration == nil || s.Migration.Phase == "" {
		return phaseTLSOnly
	}
	return s.Migration.Phase
}

// brokerTarget is one broker as plan and apply see it.
type brokerTarget struct {
	// NodeID is 0 for the single-broker form until read from the file.
	NodeID         int
	ConfigFile     string
	RestartCommand []string
	Listeners      []listenerSpec
}

func (b brokerTarget) label() string {
	if b.NodeID == 0 {
		return "broker"
	}
	return "broker " + strconv.Itoa(b.NodeID)
}

// brokersOf lists the target's brokers: connection.config_file with
// spec.listeners (one broker), or connection.brokers with spec.brokers.
func brokersOf(c connection, s spec) ([]brokerTarget, error) {
	if len(c.Brokers) == 0 {
		if len(s.Brokers) > 0 {
			return nil, fmt.Errorf("spec.brokers needs connection.brokers")
		}
		return []brokerTarget{{ConfigFile: c.ConfigFile, RestartCommand: c.RestartCommand, Listeners: s.Listeners}}, nil
	}
	if c.ConfigFile != "" || len(c.RestartCommand) > 0 || len(s.Listeners) > 0 {
		return nil, fmt.Errorf("use either connection.config_file/restart_command with spec.listeners (one broker) or connection.brokers with spec.brokers, not both")
	}
	var out []brokerTarget
	for _, bc := range c.Brokers {
		i := slices.IndexFunc(s.Brokers, func(bs brokerSpec) bool { return bs.NodeID == bc.NodeID })
		if i < 0 {
			return nil, fmt.Errorf("connection.brokers has node %d, spec.brokers does not", bc.NodeID)
		}
		if slices.ContainsFunc(out, func(b brokerTarget) bool { return b.NodeID == bc.NodeID }) {
			return nil, fmt.Errorf("node %d listed twice in connection.brokers", bc.NodeID)
		}
		out = append(out, brokerTarget{NodeID: bc.NodeID, ConfigFile: bc.ConfigFile, RestartCommand: bc.RestartCommand, Listeners: s.Brokers[i].Listeners})
	}
	if len(s.Brokers) != len(out) {
		return nil, fmt.Errorf("spec.brokers lists a node connection.brokers does not")
	}
	return out, nil
}

// listenerLayout computes the listener settings of one broker for a phase.
// cur is the broker's server.properties (nil when rendering offline: the
// end state without the quorum endpoints).
func listenerLayout(s spec, b brokerTarget, all []brokerTarget, cur map[string]string) ([][2]string, error) {
	phase := s.phase()
	var finalNames, finalAdv, finalMap, finalCtl []string
	inter := strings.ToUpper(s.InterBrokerListener)
	for _, l := range b.Listeners {
		name := strings.ToUpper(l.Name)
		finalNames = append(finalNames, name+"://"+l.Address)
		finalMap = append(finalMap, name+":SSL")
		if l.Controller {
			finalCtl = append(finalCtl, name)
		} else {
			finalAdv = append(finalAdv, name+"://"+l.Address)
			if inter == "" {
				inter = name
			}
		}
	}
	names, adv, pmap, ctl := finalNames, finalAdv, finalMap, finalCtl
	if phase != phaseTLSOnly && cur != nil {
		curLs, err := listenersOf(cur)
		if err != nil {
			return nil, err
		}
		var keptNames, keptMap, keptCtl []string
		var keptAdv []string
		kept := map[string]bool{}
		for _, l := range curLs {
			if slices.ContainsFunc(b.Listeners, func(s listenerSpec) bool { return strings.EqualFold(s.Name, l.Name) }) {
				continue
			}
			for _, sl := range b.Listeners {
				if portOf(sl.Address) == portOf(l.Address) {
					return nil, fmt.Errorf("phase %s keeps listener %s on %s, and spec listener %s uses the same port: give the TLS listeners their own ports during the migration", phase, l.Name, l.Address, sl.Name)
				}
			}
			kept[l.Name] = true
			keptNames = append(keptNames, l.Name+"://"+hostPortOf(cur, l.Name))
			keptMap = append(keptMap, l.Name+":"+l.Protocol)
			if l.Controller {
				keptCtl = append(keptCtl, l.Name)
			}
		}
		for _, a := range splitList(cur["advertised.listeners"]) {
			if n, _, ok := strings.Cut(a, "://"); ok && kept[strings.ToUpper(n)] {
				keptAdv = append(keptAdv, a)
			}
		}
		names = append(keptNames, finalNames...)
		adv = append(keptAdv, finalAdv...)
		pmap = append(keptMap, finalMap...)
		if phase == phaseAddTLS {
			ctl = append(keptCtl, finalCtl...)
			if curInter := strings.ToUpper(cur["inter.broker.listener.name"]); kept[curInter] {
				inter = curInter
			}
		} else {
			ctl = append(append([]string{}, finalCtl...), keptCtl...)
		}
	}
	out := [][2]string{
		{"listeners", strings.Join(names, ",")},
		{"advertised.listeners", strings.Join(adv, ",")},
		{"listener.security.protocol.map", strings.Join(pmap, ",")},
		{"inter.broker.listener.name", inter},
	}
	if len(ctl) > 0 {
		out = append(out, [2]string{"controller.listener.names", strings.Join(ctl, ",")})
	}
	if cur != nil && phase != phaseAddTLS {
		if kv, ok := quorumEndpoints(cur, b, all); ok {
			out = append(out, kv)
		}
	}
	return out, nil
}

// hostPortOf returns the host:port a listener of server.properties is
// declared with (not the loopback substitute listenersOf probes).
func hostPortOf(props map[string]string, name string) string {
	for _, l := range splitList(props["listeners"]) {
		if n, hp, ok := strings.Cut(l, "://"); ok && strings.EqualFold(n, name) {
			return hp
		}
	}
	return ""
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// quorumEndpoints points the controller quorum at the brokers' TLS
// controller listeners: controller.quorum.voters keeps every voter's id and
// takes its node's first spec controller listener; a bootstrap-servers
// quorum lists them all.
func quorumEndpoints(cur map[string]string, b brokerTarget, all []brokerTarget) ([2]string, bool) {
	ctlAddr := func(bt brokerTarget) string {
		for _, l := range bt.Listeners {
			if l.Controller {
				return l.Address
			}
		}
		return ""
	}
	if v := cur["controller.quorum.voters"]; v != "" {
		var out []string
		for _, voter := range splitList(v) {
			id, _, ok := strings.Cut(voter, "@")
			n, err := strconv.Atoi(id)
			if !ok || err != nil {
				return [2]string{}, false
			}
			i := slices.IndexFunc(all, func(bt brokerTarget) bool {
				return bt.NodeID == n || (bt.NodeID == 0 && strconv.Itoa(n) == brokerID(cur))
			})
			if i < 0 || ctlAddr(all[i]) == "" {
				return [2]string{}, false // a voter harden does not manage: leave the quorum alone
			}
			out = append(out, id+"@"+ctlAddr(all[i]))
		}
		return [2]string{"controller.quorum.voters", strings.Join(out, ",")}, true
	}
	if cur["controller.quorum.bootstrap.servers"] != "" {
		var out []string
		for _, bt := range all {
			if ctlAddr(bt) == "" {
				return [2]string{}, false
			}
			out = append(out, ctlAddr(bt))
		}
		return [2]string{"controller.quorum.bootstrap.servers", strings.Join(out, ",")}, true
	}
	return [2]string{}, false
}
