package sdk

import "github.com/harden-dev/harden/shared/checks"

// Check statuses and constructors, re-exported so a plugin needs only sdk.
const (
	StatusPass  = checks.Pass
	StatusFail  = checks.Fail
	StatusWarn  = checks.Warn
	StatusSkip  = checks.Skip
	StatusError = checks.Error

	SeverityInfo     = checks.Info
	SeverityLow      = checks.Low
	SeverityMedium   = checks.Medium
	SeverityHigh     = checks.High
	SeverityCritical = checks.Critical
)

var (
	// Passed records an observation that meets the policy.
	Passed = checks.Passed
	// Failed records an observation that violates the policy.
	Failed = checks.Failed
	// Errored records a check that could not run.
	Errored = checks.Errored
	// Reduce turns observations into a check by harden's reduction rules.
	Reduce = checks.Reduce
	// Good, Bad and Unknown make observations for Reduce.
	Good    = checks.Good
	Bad     = checks.Bad
	Unknown = checks.Unknown
	// NotApplicable skips a check that does not apply, with the reason.
	NotApplicable = checks.NotApplicable
	// Configured records configuration-only evidence (never passes a
	// high-severity check alone).
	Configured = checks.Configured
	// RegisterChecks adds the plugin's own check definitions (call from init).
	RegisterChecks = checks.Register
)

// CheckDefinition describes a check ID once.
type CheckDefinition = checks.Definition

// Observation is one conclusive or inconclusive look at the live system.
type Observation = checks.Observation
