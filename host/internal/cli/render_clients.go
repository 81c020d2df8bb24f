package cli

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/shared/sdk"
)

// clientIdentityFiles names a client's files under its install_dir: what
// its rendered configurations refer to.
func clientIdentityFiles(c policy.Client) sdk.ClientIdentity {
	f := policy.ClientFiles
	in := func(name string) string { return path.Join(c.InstallDir, name) }
	return sdk.ClientIdentity{Name: c.Name, CertFile: in(f.Cert), KeyFile: in(f.Key), CAFile: in(f.CA), KeystoreFile: in(f.Keystore),
		KeystorePasswordFile: in(f.Password), TruststoreFile: in(f.Truststore)}
}

// renderClientConfigs renders c's configuration for each of its targets
// with the target's plugin (file name "<target>/<artifact>"). secret, when
// not empty, must appear in no artifact (the keystore password of a
// bundle); an artifact with key material is refused either way.
func renderClientConfigs(ctx context.Context, s *session, c policy.Client, caBundle []byte, secret string) (map[string][]byte, error) {
	ci := clientIdentityFiles(c)
	out := map[string][]byte{}
	for _, tn := range c.Targets {
		t, _ := s.pol.Target(tn)
		p := s.eng.Plugins[t.Plugin]
		if !slices.Contains(p.Meta.Capabilities, sdk.CapClientConfig) {
			return nil, fmt.Errorf("client %s: plugin %s of target %s does not render client configurations", c.Name, t.Plugin, tn)
		}
		// Without the target's secrets: a client configuration never needs
		// harden's credentials, so none can leak into it.
		rc := sdk.RequestContext{Policy: s.pol.Context(), Target: sdk.NewTarget(t.Name, t.Connection, t.Spec, nil),
			Certificates: sdk.Certificates{CABundlePEM: caBundle}}
		r, err := p.Client.RenderClient(ctx, rc, ci)
		if err == nil && r.Diagnostics.HasError() {
			err = r.Diagnostics.Err()
		}
		if err != nil {
			return nil, fmt.Errorf("client %s: configuration for %s: %w", c.Name, tn, err)
		}
		for _, a := range r.Artifacts {
			if a.Sensitive || bytes.Contains(a.Content, []byte("PRIVATE KEY")) || (secret != "" && bytes.Contains(a.Content, []byte(secret))) {
				return nil, fmt.Errorf("client %s: plugin %s put secret material into the client configuration %s; refused", c.Name, t.Plugin, a.Path)
			}
			out[tn+"/"+a.Path] = a.Content
		}
	}
	return out, nil
}

// renderClients is `harden render --client NAME…`: each named client's
// configurations for its targets, as `harden rotate` delivers them in its
// bundle, without issuing anything (no key, no certificate, no network):
// to review them, or to ship them with a deployment. --out DIR writes
// DIR/<client>/<target>/<file>; otherwise they are printed.
func renderClients(c *cli.Context, cio IO, names []string) error {
	out := cio.Stdout
	s, err := openSession(c, cio)
	if err != nil {
		return err
	}
	defer s.eng.Close()
	for _, n := range names {
		cl, ok := s.pol.Client(n)
		if !ok {
			return exitf(ExitConfig, "render --client %s: no such client in %s", n, s.pol.File)
		}
		files, err := renderClientConfigs(c.Context, s, cl, nil, "")
		if err != nil {
			return exitf(ExitTarget, "render --client: %v", err)
		}
		keys := make([]string, 0, len(files))
		for k := range files {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var arts []sdk.Artifact
		for _, k := range keys {
			arts = append(arts, sdk.Artifact{Path: k, Content: files[k], Mode: 0o644})
		}
		if dir := c.String("out"); dir != "" {
			if err := writeArtifacts(filepath.Join(dir, cl.Name), arts); err != nil {
				return exitf(ExitConfig, "render --out: %v", err)
			}
			fmt.Fprintf(out, "client %s: %d file(s) under %s\n", cl.Name, len(arts), filepath.Join(dir, cl.Name))
			continue
		}
		for _, a := range arts {
			fmt.Fprintf(out, "--- client %s: %s\n%s", cl.Name, a.Path, a.Content)
			if len(a.Content) > 0 && a.Content[len(a.Content)-1] != '\n' {
				fmt.Fprintln(out)
			}
		}
	}
	return nil
}
