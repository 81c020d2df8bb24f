package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	stdio "io"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"github.com/harden-dev/harden/plugins/objectstore/envelope"
)

var kekFlags = []cli.Flag{
	&cli.StringFlag{Name: "kek-file", Usage: "local KEK file (0600; `harden envelope kek-init FILE` makes one)"},
	&cli.StringFlag{Name: "vault-addr", Usage: "Vault address for a transit KEK (or $VAULT_ADDR)"},
	&cli.StringFlag{Name: "vault-ca", Usage: "CA file that verifies Vault"},
	&cli.StringFlag{Name: "vault-token-file", Usage: "file with a Vault token (or $VAULT_TOKEN)"},
	&cli.StringFlag{Name: "transit-key", Usage: "transit key name (the KEK)"},
	&cli.StringFlag{Name: "transit-mount", Value: "transit", Usage: "transit mount"},
	&cli.IntFlag{Name: "chunk-size", Value: envelope.DefaultChunkSize, Usage: "plaintext chunk size in bytes"},
}

var s3Flags = []cli.Flag{
	&cli.StringFlag{Name: "endpoint", Required: true, Usage: "S3 endpoint (https://host:port)"},
	&cli.StringFlag{Name: "bucket", Required: true},
	&cli.StringFlag{Name: "ca-file", Usage: "CA file that verifies the endpoint"},
	&cli.StringFlag{Name: "access-key-file", Usage: "file with the access key (or $AWS_ACCESS_KEY_ID)"},
	&cli.StringFlag{Name: "secret-key-file", Usage: "file with the secret key (or $AWS_SECRET_ACCESS_KEY)"},
	&cli.StringFlag{Name: "sse", Value: "AES256", Usage: "server-side encryption header the bucket policy demands: AES256 or aws:kms"},
	&cli.StringFlag{Name: "sse-kms-key", Usage: "KMS key id for --sse aws:kms"},
}

// lowMemory: the streaming commands keep their heap near the live
// buffers (bounded by the pipeline) instead of letting it double first.
func lowMemory(*cli.Context) error {
	debug.SetGCPercent(25)
	return nil
}

func envelopeCommand(io IO) *cli.Command {
	return &cli.Command{Name: "envelope", Before: lowMemory, Usage: "envelope encryption of files: a fresh data key per file, wrapped by a KEK (Vault transit or a local key file)",
		Subcommands: []*cli.Command{
			{Name: "kek-init", Usage: "make a local KEK file (0600)", ArgsUsage: "FILE",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return exitf(ExitConfig, "usage: harden envelope kek-init FILE")
					}
					if err := envelope.NewLocalKEKFile(c.Args().First()); err != nil {
						return exitf(ExitConfig, "%v", err)
					}
					return nil
				}},
			{Name: "encrypt", Usage: "encrypt IN to OUT; the record (wrapped data key, commitment) goes to OUT.record.json", ArgsUsage: "IN OUT", Flags: kekFlags,
				Action: func(c *cli.Context) error { return envelopeFile(c, io, true) }},
			{Name: "decrypt", Usage: "decrypt IN (with IN.record.json) to OUT; OUT appears only when every chunk authenticated", ArgsUsage: "IN OUT", Flags: kekFlags,
				Action: func(c *cli.Context) error { return envelopeFile(c, io, false) }},
		}}
}

func objectstoreCommand(io IO) *cli.Command {
	flags := append(append([]cli.Flag{}, s3Flags...), kekFlags...)
	return &cli.Command{Name: "objectstore", Before: lowMemory, Usage: "envelope-encrypted objects: streaming put/get with a data key per object, wrapped by the KEK",
		Subcommands: []*cli.Command{
			{Name: "put", Usage: "encrypt FILE and upload it as KEY (record in the object's metadata)", ArgsUsage: "FILE KEY", Flags: flags,
				Action: func(c *cli.Context) error { return objectPut(c, io) }},
			{Name: "get", Usage: "download KEY and decrypt it to FILE (written only when every chunk authenticated)", ArgsUsage: "KEY FILE", Flags: flags,
				Action: func(c *cli.Context) error { return objectGet(c, io) }},
			{Name: "rewrap", Usage: "after a KEK rotation, rewrap every object's data key to the latest KEK version (records only, bodies untouched; resumable)",
				Flags: append(append([]cli.Flag{}, flags...),
					&cli.StringFlag{Name: "prefix", Usage: "only keys under this prefix"},
					&cli.StringFlag{Name: "checkpoint", Usage: "resume file (default .harden-rewrap-<bucket>.checkpoint)"},
					&cli.IntFlag{Name: "batch", Value: 256, Usage: "objects per transit batch rewrap"},
					&cli.IntFlag{Name: "concurrency", Value: 16, Usage: "parallel HEAD/copy requests"},
					&cli.BoolFlag{Name: "rotate", Usage: "rotate the transit KEK first (a new latest version), then rewrap to it"},
					&cli.BoolFlag{Name: "retire", Usage: "then raise the KEK's min_decryption_version (only when no debt is left)"}),
				Action: func(c *cli.Context) error { return objectRewrap(c, io) }},
		}}
}

func secretFromFileOrEnv(io IO, file, env string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		return strings.TrimSpace(string(b)), err
	}
	if v, ok := io.Getenv(env); ok {
		return v, nil
	}
	return "", fmt.Errorf("neither a file nor $%s", env)
}

// kekFrom builds the KEK the flags name.
func kekFrom(c *cli.Context, io IO) (envelope.KEK, error) {
	if f := c.String("kek-file"); f != "" {
		return envelope.LoadLocalKEK(f)
	}
	key := c.String("transit-key")
	if key == "" {
		return nil, fmt.Errorf("name a KEK: --kek-file FILE, or --transit-key NAME with --vault-addr")
	}
	addr := c.String("vault-addr")
	if addr == "" {
		addr, _ = io.Getenv("VAULT_ADDR")
	}
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	tcfg, err := tlsWithCA(c.String("vault-ca"))
	if err != nil {
		return nil, err
	}
	cfg.HttpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tcfg}}
	cl, err := vault.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	tok, err := secretFromFileOrEnv(io, c.String("vault-token-file"), "VAULT_TOKEN")
	if err != nil {
		return nil, fmt.Errorf("vault token: %w", err)
	}
	cl.SetToken(tok)
	return &envelope.TransitKEK{Client: cl, Mount: c.String("transit-mount"), Key: key}, nil
}

func s3From(c *cli.Context, io IO) (*minio.Client, error) {
	u, err := url.Parse(c.String("endpoint"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--endpoint %q: not a URL", c.String("endpoint"))
	}
	ak, err := secretFromFileOrEnv(io, c.String("access-key-file"), "AWS_ACCESS_KEY_ID")
	if err != nil {
		return nil, fmt.Errorf("access key: %w", err)
	}
	sk, err := secretFromFileOrEnv(io, c.String("secret-key-file"), "AWS_SECRET_ACCESS_KEY")
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	tcfg, err := tlsWithCA(c.String("ca-file"))
	if err != nil {
		return nil, err
	}
	return minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(ak, sk, ""), Secure: u.Scheme == "https",
		Transport: &http.Transport{TLSClientConfig: tcfg, ResponseHeaderTimeout: 60 * time.Second}})
}

func sseFrom(c *cli.Context) (encrypt.ServerSide, error) {
	switch c.String("sse") {
	case "", "none":
		return nil, nil
	case "AES256":
		return encrypt.NewSSE(), nil
	case "aws:kms":
		return encrypt.NewSSEKMS(c.String("sse-kms-key"), nil)
	}
	return nil, fmt.Errorf("--sse %q: want AES256 or aws:kms", c.String("sse"))
}

func objectPut(c *cli.Context, io IO) error {
	if c.NArg() != 2 {
		return exitf(ExitConfig, "usage: harden objectstore put [flags] FILE KEY")
	}
	kek, cl, err := kekAndS3(c, io)
	if err != nil {
		return err
	}
	sse, err := sseFrom(c)
	if err != nil {
		return exitf(ExitConfig, "%v", err)
	}
	f, err := os.Open(c.Args().Get(0))
	if err != nil {
		return exitf(ExitConfig, "%v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return exitf(ExitConfig, "%v", err)
	}
	rec, err := envelope.PutObject(c.Context, cl, c.String("bucket"), c.Args().Get(1), f, fi.Size(), kek, sse, envelope.Options{ChunkSize: c.Int("chunk-size")})
	if err != nil {
		return &ExitError{Code: ExitTarget, Err: err}
	}
	fmt.Fprintf(io.Stdout, "put %s/%s: %d bytes, data key wrapped by %s v%d\n", c.String("bucket"), c.Args().Get(1), fi.Size(), rec.KEK, rec.KEKVersion)
	return nil
}

func objectGet(c *cli.Context, io IO) error {
	if c.NArg() != 2 {
		return exitf(ExitConfig, "usage: harden objectstore get [flags] KEY FILE")
	}
	kek, cl, err := kekAndS3(c, io)
	if err != nil {
		return err
	}
	var rec envelope.Record
	err = envelope.WriteFileAtomic(c.Args().Get(1), 0o600, func(w stdio.Writer) error {
		var gerr error
		rec, gerr = envelope.GetObject(c.Context, cl, c.String("bucket"), c.Args().Get(0), w, kek, envelope.Options{})
		return gerr
	})
	if err != nil {
		return &ExitError{Code: ExitTarget, Err: fmt.Errorf("%w (no output file written)", err)}
	}
	fmt.Fprintf(io.Stdout, "get %s/%s: %d bytes authenticated and decrypted to %s\n", c.String("bucket"), c.Args().Get(0), rec.Size, c.Args().Get(1))
	return nil
}

// envelopeFile encrypts or decrypts a local file; the record is a JSON
// sidecar (OUT.record.json / IN.record.json).
func envelopeFile(c *cli.Context, io IO, enc bool) error {
	if c.NArg() != 2 {
		return exitf(ExitConfig, "usage: harden envelope %s [flags] IN OUT", map[bool]string{true: "encrypt", false: "decrypt"}[enc])
	}
	in, out := c.Args().Get(0), c.Args().Get(1)
	kek, err := kekFrom(c, io)
	if err != nil {
		return exitf(ExitConfig, "%v", err)
	}
	ctx := context.WithoutCancel(c.Context)
	f, err := os.Open(in)
	if err != nil {
		return exitf(ExitConfig, "%v", err)
	}
	defer f.Close()
	if enc {
		fi, _ := f.Stat()
		dk, err := kek.NewDataKey(ctx)
		if err != nil {
			return &ExitError{Code: ExitTarget, Err: err}
		}
		defer clear(dk.Plaintext)
		rec := envelope.Record{Version: envelope.Version, KEK: kek.ID(), KEKVersion: dk.KEKVersion, WrappedDEK: dk.Wrapped,
			Commitment: envelope.Commitment(dk.Plaintext), ChunkSize: c.Int("chunk-size"), Size: fi.Size()}
		if err := envelope.WriteFileAtomic(out, 0o644, func(w stdio.Writer) error {
			_, err := envelope.Encrypt(w, f, dk.Plaintext, envelope.Options{ChunkSize: rec.ChunkSize})
			return err
		}); err != nil {
			return &ExitError{Code: ExitTarget, Err: err}
		}
		b, _ := json.MarshalIndent(rec.Metadata(), "", "  ")
		return envelope.WriteFileAtomic(out+".record.json", 0o644, func(w stdio.Writer) error { _, err := w.Write(append(b, '\n')); return err })
	}
	b, err := os.ReadFile(in + ".record.json")
	if err != nil {
		return exitf(ExitConfig, "the record %s.record.json is missing: %v", in, err)
	}
	var meta map[string]string
	if err := json.Unmarshal(b, &meta); err != nil {
		return exitf(ExitConfig, "%s.record.json: %v", in, err)
	}
	rec, err := envelope.ParseRecord(meta)
	if err != nil {
		return exitf(ExitConfig, "%s.record.json: %v", in, err)
	}
	dek, err := kek.Unwrap(ctx, rec.WrappedDEK)
	if err != nil {
		return &ExitError{Code: ExitTarget, Err: err}
	}
	defer clear(dek)
	if envelope.Commitment(dek) != rec.Commitment {
		return &ExitError{Code: ExitTarget, Err: fmt.Errorf("the data key does not match the record's commitment (record swapped or tampered)")}
	}
	if err := envelope.WriteFileAtomic(out, 0o600, func(w stdio.Writer) error {
		_, err := envelope.Decrypt(w, f, dek, envelope.Options{})
		return err
	}); err != nil {
		return &ExitError{Code: ExitTarget, Err: fmt.Errorf("%s: %w (no output file written)", in, err)}
	}
	return nil
}

func objectRewrap(c *cli.Context, io IO) error {
	kek, cl, err := kekAndS3(c, io)
	if err != nil {
		return err
	}
	tk, ok := kek.(*envelope.TransitKEK)
	if !ok {
		return exitf(ExitConfig, "rewrap needs a Vault transit KEK (--transit-key): a local KEK file has no versions")
	}
	if c.Bool("rotate") {
		if _, err := tk.Client.Logical().WriteWithContext(c.Context, tk.Mount+"/keys/"+tk.Key+"/rotate", nil); err != nil {
			return &ExitError{Code: ExitTarget, Err: fmt.Errorf("rotate %s: %w", tk.ID(), err)}
		}
		v, _ := tk.LatestVersion(c.Context)
		fmt.Fprintf(io.Stdout, "rotated %s: latest version %d\n", tk.ID(), v)
	}
	cp := c.String("checkpoint")
	if cp == "" {
		cp = ".harden-rewrap-" + c.String("bucket") + ".checkpoint"
	}
	var bar *progressbar.ProgressBar
	if io.IsTerminal() {
		bar = progressbar.NewOptions(-1, progressbar.OptionSetWriter(io.Stderr), progressbar.OptionSetDescription("rewrap"), progressbar.OptionShowCount())
	}
	rep, err := envelope.Rewrap(c.Context, cl, c.String("bucket"), tk, envelope.RewrapOptions{Prefix: c.String("prefix"), Checkpoint: cp,
		Batch: c.Int("batch"), Concurrency: c.Int("concurrency"), Retire: c.Bool("retire"),
		Progress: func(done int) {
			if bar != nil {
				_ = bar.Set(done)
			}
		}})
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(io.Stderr)
	}
	fmt.Fprintf(io.Stdout, "rewrap %s/%s to %s v%d: %d scanned, %d rewrapped, %d already current, %d not wrapped by this KEK; debt: %d object(s), %d noncurrent version(s)%s\n",
		c.String("bucket"), c.String("prefix"), tk.ID(), rep.Latest, rep.Scanned, rep.Rewrapped, rep.Current, rep.NotEnvelope, len(rep.Debt), rep.Noncurrent,
		map[bool]string{true: "; old KEK versions retired (min_decryption_version raised)", false: ""}[rep.Retired])
	for _, d := range rep.Debt {
		fmt.Fprintf(io.Stdout, "  debt: %s\n", d)
	}
	if err != nil {
		return &ExitError{Code: ExitTarget, Err: fmt.Errorf("%w (progress kept in %s; run again to resume)", err, cp)}
	}
	if len(rep.Debt) > 0 {
		return &ExitError{Code: ExitFindings, Err: fmt.Errorf("%d object(s) left under old KEK versions", len(rep.Debt))}
	}
	return nil
}

// tlsWithCA is a TLS client configuration trusting the PEM CA file (the
// system roots when caFile is empty).
func tlsWithCA(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return cfg, nil
}

// kekAndS3 builds the KEK and the S3 client the flags name (usage errors).
func kekAndS3(c *cli.Context, io IO) (envelope.KEK, *minio.Client, error) {
	kek, err := kekFrom(c, io)
	if err != nil {
		return nil, nil, exitf(ExitConfig, "%v", err)
	}
	cl, err := s3From(c, io)
	if err != nil {
		return nil, nil, exitf(ExitConfig, "%v", err)
	}
	return kek, cl, nil
}
