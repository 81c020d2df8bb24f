package exporter

import (
	dto "github.com/prometheus/client_model/go"
)

// metric is one exported family. Labels are low-cardinality by
// construction: they name the policy's targets, endpoints, checks,
// certificates and keys, never anything a peer can grow (no evidence, no
// error text).
type metric struct {
	name, help string
	typ        dto.MetricType
	labels     []string
}

var (
	gauge   = dto.MetricType_GAUGE
	counter = dto.MetricType_COUNTER
)

// Exporter and run: is the data fresh, did the last run read everything.
var (
	mInfo = &metric{"harden_exporter_info", "The harden exporter serving these metrics: its version, the policy file and TLS profile it verifies. Always 1.",
		gauge, []string{"version", "policy", "profile"}}
	mInterval = &metric{"harden_exporter_interval_seconds", "Time between the starts of two verify runs (--interval). HardenRunStale compares the last success against three of them.",
		gauge, nil}
	mRuns = &metric{"harden_runs_total", "Verify and inventory runs completed since the exporter started, successful or not.",
		counter, nil}
	mRunErrors = &metric{"harden_run_errors_total", "Runs that did not read everything: the run failed as a whole (policy, plugin start) or at least one target, check, endpoint or inventory item errored.",
		counter, nil}
	mRunOK = &metric{"harden_run_ok", "1 when the last run read every target completely, 0 when anything errored (see harden_target_up and harden_data_stale).",
		gauge, nil}
	mLastRun = &metric{"harden_last_run_timestamp_seconds", "When the last run ended (Unix time), successful or not.",
		gauge, nil}
	mLastSuccess = &metric{"harden_last_success_timestamp_seconds", "When the last run that read everything ended (Unix time); 0 when no run has yet.",
		gauge, nil}
	mRunDuration = &metric{"harden_run_duration_seconds", "How long the last run (verify of every target, then the inventory) took.",
		gauge, nil}
)

// Targets.
var (
	mTargetUp = &metric{"harden_target_up", "1 when the last run read the target completely: its verify, every check, endpoint and inventory item; 0 otherwise.",
		gauge, []string{"target", "plugin"}}
	mTargetLastSuccess = &metric{"harden_target_last_success_timestamp_seconds", "When a run last read the target completely (Unix time); 0 when none has yet.",
		gauge, []string{"target"}}
	mStale = &metric{"harden_data_stale", "1 when some of the target's series are the last good values of an earlier run, kept because the last run could not read them; 0 when every series is from the last run.",
		gauge, []string{"target"}}
	mUnreadable = &metric{"harden_inventory_unreadable_items", "Inventory items of the target the last run could not read completely (tier unknown in harden inventory: a listener that did not answer, a missing file, a failed plugin, a rotating key whose creation time the target does not report).",
		gauge, []string{"target"}}
)

// Checks: one verdict per check and subject.
var (
	checkLabels  = []string{"target", "plugin", "check", "subject", "severity"}
	mCheckStatus = &metric{"harden_check_status", "The check's verdict as the status label (pass, fail, warn, skip, error); always 1, one series per check and subject.",
		gauge, append(append([]string{}, checkLabels...), "status")}
	mCheckFailed = &metric{"harden_check_failed", "1 when the check's last conclusive verdict is a failure on a live observation, 0 otherwise (passed, warned, skipped, or never conclusive). While the check errors (inconclusive), this is the verdict of the last run that could tell (harden_check_stale 1): an error is not a fix.",
		gauge, checkLabels}
	mCheckStale = &metric{"harden_check_stale", "1 when harden_check_failed (and, for a check the last run did not give, harden_check_status) comes from an earlier run, because the last run could not verify the check; 0 when it is the last run's.",
		gauge, checkLabels}
)

// Endpoints: what the probe observed on each endpoint a target serves.
var (
	// endpoint is the address, name the endpoint's name in the target: two
	// doors on one address (PostgreSQL 17's STARTTLS and direct TLS) are
	// told apart by name.
	epLabels = []string{"target", "endpoint", "name"}
	mEPUp    = &metric{"harden_endpoint_up", "1 when the last run scanned the endpoint, 0 when it could not (the other endpoint series are then the last good values).",
		gauge, epLabels}
	mEPInfo = &metric{"harden_endpoint_info", "The endpoint's protocol dialect; always 1.",
		gauge, []string{"target", "endpoint", "name", "dialect"}}
	mEPVersion = &metric{"harden_endpoint_tls_version_accepted", "1 when the endpoint accepted a handshake at this protocol version, 0 when it refused it; absent when the probe could not tell (inconclusive).",
		gauge, []string{"target", "endpoint", "name", "version"}}
	mEPSuite = &metric{"harden_endpoint_cipher_suite_accepted", "A cipher suite (IANA name) the endpoint accepted at this version; always 1, one series per accepted suite.",
		gauge, []string{"target", "endpoint", "name", "version", "suite"}}
	mEPGroup = &metric{"harden_endpoint_group_accepted", "A key-exchange group (IANA name) the endpoint accepted; always 1, one series per accepted group.",
		gauge, []string{"target", "endpoint", "name", "group"}}
	mEPClientRequested = &metric{"harden_endpoint_client_cert_requested", "1 when the endpoint asked for a client certificate in the handshake, 0 when it did not.",
		gauge, epLabels}
	mEPClientRequired = &metric{"harden_endpoint_client_cert_required", "1 when the endpoint refused a session without a client certificate, 0 when it accepted one; absent when not tried or inconclusive.",
		gauge, epLabels}
	mEPPlaintext = &metric{"harden_endpoint_plaintext_refused", "1 when the endpoint refused a plaintext session, 0 when it accepted one; absent when not tried or inconclusive.",
		gauge, epLabels}
	mEPTrusted = &metric{"harden_endpoint_chain_trusted", "1 when the served chain verified against the CA harden trusts for the target, 0 when it did not; absent when not checked.",
		gauge, epLabels}
	mEPInconclusive = &metric{"harden_endpoint_inconclusive_observations", "Observations on the endpoint that could not be told apart from a refusal or an acceptance (timeouts, resets).",
		gauge, epLabels}
)

// Certificates and keys from the inventory. kind is the inventory's item
// kind: served (what a listener served), server and client (what harden
// holds for the target), ca (the bundle harden trusts), client_identity,
// stored_ca and stored_certificate (what the target stores).
var (
	certLabels = []string{"target", "kind", "where", "name", "serial", "subject"}
	mNotAfter  = &metric{"harden_certificate_not_after_seconds", "The certificate's notAfter (Unix time). Kept after expiry, and kept from the last good run while the certificate cannot be read: alert on it minus time().",
		gauge, certLabels}
	mNotBefore = &metric{"harden_certificate_not_before_seconds", "The certificate's notBefore (Unix time).",
		gauge, certLabels}
	mRenewAt = &metric{"harden_certificate_renew_at_seconds", "When the policy renews the certificate (notAfter minus rotation.renew_before, Unix time).",
		gauge, certLabels}
	keyLabels  = []string{"target", "where", "key"}
	mKeyLatest = &metric{"harden_key_latest_version", "The key's latest version number.",
		gauge, keyLabels}
	mKeyCreated = &metric{"harden_key_latest_version_created_seconds", "When the key's latest version was created (Unix time); absent when the target does not say.",
		gauge, keyLabels}
	mKeyNext = &metric{"harden_key_next_rotation_seconds", "When the key rotates next (latest version's creation plus the auto-rotate period, Unix time); absent when rotation is off or the creation time is unknown.",
		gauge, keyLabels}
	mKeyPeriod = &metric{"harden_key_auto_rotate_period_seconds", "The key's auto-rotate period; 0 when automatic rotation is off.",
		gauge, keyLabels}
	mKeyDisabled = &metric{"harden_key_auto_rotate_disabled", "1 when the key's automatic rotation is off, 0 when it is on.",
		gauge, keyLabels}
)

// metrics lists every family, in the order the README documents them
// (the registry writes them sorted by name).
var metrics = []*metric{
	mInfo, mInterval, mRuns, mRunErrors, mRunOK, mLastRun, mLastSuccess, mRunDuration,
	mTargetUp, mTargetLastSuccess, mStale, mUnreadable,
	mCheckStatus, mCheckFailed, mCheckStale,
	mEPUp, mEPInfo, mEPVersion, mEPSuite, mEPGroup, mEPClientRequested, mEPClientRequired, mEPPlaintext, mEPTrusted, mEPInconclusive,
	mNotAfter, mNotBefore, mRenewAt,
	mKeyLatest, mKeyCreated, mKeyNext, mKeyPeriod, mKeyDisabled,
}
