package inventory

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

const textTime = "2006-01-02 15:04"

var header = []string{"KIND", "WHERE", "SUBJECT", "SERIAL", "NOT AFTER (UTC)", "DAYS LEFT", "RENEW AT / NEXT ROTATION", "TIER"}

// WriteText writes the report as one table per target (then the client
// identities and the CA certificates, shared across targets), each item's findings and error
// under its row, and a summary line with the counts per tier.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	alerts := strings.Join(r.AlertAt, "/")
	if alerts == "" {
		alerts = "none"
	}
	fmt.Fprintf(&b, "Inventory of %s at %s UTC (renew_before %s, alert tiers %s)\n", r.Policy, r.GeneratedAt.UTC().Format(textTime), r.RenewBefore, alerts)
	for _, t := range r.Targets {
		var items []Item
		for _, it := range r.Items {
			if it.Target == t && it.Kind != KindCA {
				items = append(items, it)
			}
		}
		fmt.Fprintf(&b, "\ntarget %s\n", t)
		table(&b, items)
	}
	// Client identities belong to no target: their own table (an item the
	// summary counts is always printed).
	var cas, clients []Item
	for _, it := range r.Items {
		switch {
		case it.Kind == KindCA:
			cas = append(cas, it)
		case it.Kind == KindClientIdentity:
			clients = append(clients, it)
		}
	}
	if len(clients) > 0 {
		b.WriteString("\nClient identities (clients:)\n")
		table(&b, clients)
	}
	if len(cas) > 0 {
		b.WriteString("\nCA certificates harden trusts\n")
		table(&b, cas)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nNotes\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "  %s: %s\n", n.Target, n.Message)
		}
	}
	b.WriteString("\n" + summaryLine(r) + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func table(b *strings.Builder, items []Item) {
	if len(items) == 0 {
		b.WriteString("  (nothing listed)\n")
		return
	}
	rows := [][]string{header}
	for _, it := range items {
		rows = append(rows, row(it))
	}
	width := make([]int, len(header))
	for _, r := range rows {
		for i, cell := range r {
			width[i] = max(width[i], len([]rune(cell)))
		}
	}
	for n, r := range rows {
		var line strings.Builder
		for i, cell := range r {
			line.WriteString(cell)
			if i < len(r)-1 {
				line.WriteString(strings.Repeat(" ", width[i]-len([]rune(cell))+2))
			}
		}
		b.WriteString("  " + strings.TrimRight(line.String(), " ") + "\n")
		if n == 0 {
			continue
		}
		it := items[n-1]
		if it.Error != "" {
			b.WriteString("      error: " + it.Error + "\n")
		}
		for _, f := range it.Findings {
			b.WriteString("      ! " + f + "\n")
		}
	}
}

func row(it Item) []string {
	where := it.Where
	if it.Name != "" {
		where = it.Name + " " + where
	}
	if len(it.Targets) > 0 {
		where += " (" + strings.Join(it.Targets, ", ") + ")"
	}
	r := []string{it.Kind, where, "-", "-", "-", "-", "-", it.Tier}
	switch {
	case it.Certificate != nil:
		c := it.Certificate
		r[2], r[3], r[4], r[5], r[6] = c.Subject, c.Serial, c.NotAfter.Format(textTime), strconv.Itoa(c.DaysLeft), c.RenewAt.Format(textTime)
		if r[2] == "" {
			r[2] = "(no subject)"
		}
	case it.Key != nil:
		k := it.Key
		r[2] = fmt.Sprintf("key %s v%d", k.Type, k.LatestVersion)
		if k.AgeDays != nil {
			r[5] = "age " + strconv.Itoa(*k.AgeDays) + "d"
		}
		switch {
		case k.NextRotation != nil:
			r[6] = k.NextRotation.Format(textTime)
		case k.AutoRotatePeriodSeconds == 0:
			r[6] = "never (rotation off)"
		}
	}
	return r
}

// summaryLine: "12 items: 6 ok, 1 30d, 1 expired, 2 unknown (could not be
// read); 3 with findings; exit code 7".
func summaryLine(r *Report) string {
	s := r.Summary
	order := append(append([]string{TierOK}, r.AlertAt...), TierExpired, TierNotYetValid, TierRotationDisabled, TierOverdue, TierUnknown)
	var parts []string
	for _, t := range order {
		if n := s.Tiers[t]; n > 0 {
			p := fmt.Sprintf("%d %s", n, t)
			if t == TierUnknown {
				p += " (could not be read: inventory incomplete)"
			}
			parts = append(parts, p)
		}
	}
	// Tiers the rules do not name (never expected) are still counted.
	var other []string
	for t := range s.Tiers {
		if !slices.Contains(order, t) {
			other = append(other, t)
		}
	}
	slices.Sort(other)
	for _, t := range other {
		parts = append(parts, fmt.Sprintf("%d %s", s.Tiers[t], t))
	}
	line := fmt.Sprintf("Summary: %d items", s.Items)
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, ", ")
	}
	if s.Findings > 0 {
		line += fmt.Sprintf("; %d with findings", s.Findings)
	}
	return line + fmt.Sprintf("; exit code %d", s.ExitCode)
}
