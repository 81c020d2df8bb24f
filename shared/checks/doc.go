// Package checks is the one check model of harden: what verify, scan and every
// plugin report. A check has a stable ID, a status, a severity, the evidence
// observed on the live system and a remediation. The registry maps IDs to
// titles, default severities and references (the seed checklist, CIS
// controls), so plugins only state what they observed.
package checks
