package cli

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// reportCommand: `harden report -i run.json ...` merges JSON runs (TODO(H3):
// being built).
func reportCommand(io IO) *cli.Command {
	return &cli.Command{Name: "report", Usage: "merge JSON runs (shards of a fleet, or a history) and render them",
		Action: func(*cli.Context) error { return errors.New("report: not built yet") }}
}

// shardTargets narrows the session to verify --shard i/N's share (TODO(H3)).
func shardTargets(s *session, spec string) (string, error) {
	if spec != "" {
		return "", errors.New("--shard: not built yet")
	}
	return "", nil
}
