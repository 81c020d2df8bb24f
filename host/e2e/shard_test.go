package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl"
	"go.yaml.in/yaml/v3"

	"github.com/harden-dev/harden/host/internal/cli"
	"github.com/harden-dev/harden/host/internal/report"
)

// verify --shard I/N over a fleet of real redis servers, merged by
// harden report, equals one verify of the whole fleet — for N = 1, 3 and
// 7, the 7 run exactly as the shipped Kubernetes Indexed Job and Nomad
// job files say (their command lines, the shard pods' and the merge Job's
// scripts). Shards of two runs, of two policy versions, or a run id used
// twice are refused, naming what differs.
//
// The fleet: 13 targets, 3 on each of 4 real TLS redis servers (one
// serving a certificate 3 days from expiry: failing checks) and one
// whose port nothing listens on (its checks in error): the merged run's
// exit code is verify's, 3. Compared after removing what differs between
// any two runs: generated_at and duration_ms (the run's and the
// inventory's generated_at), and the run id (checked on its own). Nothing else differs: the checks' evidence
// carries no timings.
func TestShardedVerifyMergesToOneRun(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	buildRedisPlugin(t, pluginDir)
	ca := newInventoryCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	now, day := time.Now(), 24*time.Hour
	var targets strings.Builder
	for s, left := range []time.Duration{60 * day, 60 * day, 3 * day, 60 * day} {
		name := fmt.Sprintf("redis%d", s)
		certFile, keyFile := ca.leaf(t, dir, name, int64(300+s), now.Add(-day), now.Add(left))
		addr, sock := startTLSRedis(t, certFile, keyFile, caFile)
		for k := range 3 {
			fmt.Fprintf(&targets, "  - name: cache-%d-%d\n    plugin: redis\n    connection: {address: %q, unix_socket: %q}\n    certificate: {cert_file: %s, key_file: %s}\n    spec: {cert_dir: %q}\n",
				s, k, addr, sock, filepath.Base(certFile), filepath.Base(keyFile), filepath.Join(dir, fmt.Sprintf("certdir-%d-%d", s, k)))
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	downCert, downKey := ca.leaf(t, dir, "down", 400, now.Add(-day), now.Add(60*day))
	fmt.Fprintf(&targets, "  - name: down\n    plugin: redis\n    connection: {address: %q}\n    certificate: {cert_file: %s, key_file: %s}\n    spec: {cert_dir: %q}\n",
		closed, filepath.Base(downCert), filepath.Base(downKey), filepath.Join(dir, "certdir-down"))
	policy := filepath.Join(dir, "policy.yaml")
	doc := "apiVersion: harden/v1\nprofile: intermediate\ncertificates:\n  source: files\n  files: {ca_file: ca.pem}\ntargets:\n" + targets.String()
	if err := os.WriteFile(policy, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, "plugins.lock")
	run := func(env []string, args ...string) result {
		t.Helper()
		cmd := exec.Command(hardenBin, append(args, "--plugin-dir", pluginDir, "--lock-file", lock)...)
		if args[0] == "report" {
			cmd = exec.Command(hardenBin, args...)
		}
		cmd.Env = append(os.Environ(), env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return result{code, out.String(), errb.String()}
	}
	if r := run(nil, "plugins", "lock"); r.code != 0 {
		t.Fatalf("lock: %d %s", r.code, r.stderr)
	}

	start := time.Now()
	ref := run(nil, "verify", "-f", policy, "--inventory", "--format", "json")
	t.Logf("one verify of the fleet: exit %d in %v", ref.code, time.Since(start).Round(time.Millisecond))
	if ref.code != cli.ExitTarget {
		t.Fatalf("the whole fleet: exit %d, want 3 (the down target)\n%s", ref.code, ref.stderr)
	}
	whole := decodeRun(t, "the whole run", []byte(ref.stdout))
	if len(whole.Targets) != 13 || whole.Summary["fail"] == 0 || whole.Summary["pass"] == 0 || whole.Summary["error"] == 0 || whole.Inventory == nil {
		t.Fatalf("the reference run: %d targets, summary %v", len(whole.Targets), whole.Summary)
	}
	want := normalizeRun(t, whole)
	policySHA := fmt.Sprintf("%x", sha256.Sum256(mustRead(t, policy)))
	if whole.PolicySHA256 != policySHA || whole.RunID != "" {
		t.Errorf("the whole run: policy_sha256 %q run_id %q, want the policy file's SHA-256 %s and no run id", whole.PolicySHA256, whole.RunID, policySHA)
	}

	// compare merges the shards in dir (as the report command line args
	// says) and checks each shard holds its share.
	compare := func(what string, n int, shardFiles []string, reportArgs []string, merged func(r result) []byte) {
		t.Helper()
		for i, f := range shardFiles {
			s := decodeRun(t, f, mustRead(t, f))
			if s.Shard != fmt.Sprintf("%d/%d", i, n) {
				t.Errorf("%s: %s has shard %q", what, f, s.Shard)
			}
			for _, tg := range s.Targets {
				if report.ShardOf(report.TargetUnit(tg.Name), n) != i {
					t.Errorf("%s: %s holds %s", what, f, tg.Name)
				}
			}
		}
		start := time.Now()
		r := run(nil, reportArgs...)
		t.Logf("%s: harden report of %d shards: exit %d in %v", what, n, r.code, time.Since(start).Round(time.Millisecond))
		if r.code != ref.code {
			t.Errorf("%s: harden report exit %d, verify exit %d\n%s", what, r.code, ref.code, r.stderr)
		}
		got := normalizeRun(t, decodeRun(t, what, merged(r)))
		if got != want {
			t.Errorf("%s: the merged shards differ from one run:\n%s", what, lineDiff(got, want))
		}
	}

	// N = 1 and 3 from the command line; 3 with the index left for
	// harden to read, as a Kubernetes command without a shell passes it.
	for _, n := range []int{1, 3} {
		sd := filepath.Join(dir, fmt.Sprintf("n%d", n))
		os.Mkdir(sd, 0o755)
		var files []string
		for i := range n {
			f := filepath.Join(sd, fmt.Sprintf("shard-%d.json", i))
			spec, env := fmt.Sprintf("%d/%d", i, n), []string(nil)
			if n == 3 {
				spec, env = "$(JOB_COMPLETION_INDEX)/3", []string{"JOB_COMPLETION_INDEX=" + strconv.Itoa(i)}
			}
			if r := run(env, "verify", "-f", policy, "--shard", spec, "--inventory", "--format", "json", "-o", f); r.code != shardExit(t, f) {
				t.Errorf("shard %d/%d: exit %d, want %d\n%s", i, n, r.code, shardExit(t, f), r.stderr)
			}
			files = append(files, f)
		}
		compare(fmt.Sprintf("N=%d", n), n, files, []string{"report", "-i", filepath.Join(sd, "shard-*.json"), "--format", "json"},
			func(r result) []byte { return []byte(r.stdout) })
	}

	// N = 7 as the Kubernetes Jobs run it: the shard pods' init script
	// and harden command, then the merge Job's wait script and command,
	// with the env the ConfigMap, the downward API and the Job controller
	// give them (the kubelet expands $(VAR) in commands).
	job := readVerifyJobs(t)
	rdir, mdir := filepath.Join(dir, "k8s"), filepath.Join(dir, "merge")
	os.Mkdir(rdir, 0o755)
	os.Mkdir(mdir, 0o755)
	const runID, uid = "20260301T120000Z", "6f1c0e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b"
	kube := strings.NewReplacer("/etc/harden/policy.yaml", policy, "/reports", rdir, "/merge", mdir)
	sh := func(script string, env ...string) (string, error) {
		c := exec.Command("/bin/sh", "-c", kube.Replace(script))
		c.Env = append(os.Environ(), env...)
		out, err := c.CombinedOutput()
		return string(out), err
	}
	var files []string
	for i := range job.shards {
		if out, err := sh(job.runDir, "RUN_ID="+runID, "JOB_UID="+uid); err != nil {
			t.Fatalf("k8s shard %d: the run-dir script: %v\n%s", i, err, out)
		}
		var args []string
		for _, a := range job.verify[1:] {
			a = strings.NewReplacer("$(JOB_COMPLETION_INDEX)", strconv.Itoa(i), "$(RUN_ID)", runID, "$(JOB_UID)", uid).Replace(a)
			args = append(args, kube.Replace(a))
		}
		f := filepath.Join(rdir, "runs", runID, uid, fmt.Sprintf("shard-%d.json", i))
		if r := run([]string{"JOB_COMPLETION_INDEX=" + strconv.Itoa(i)}, args...); r.code != shardExit(t, f) {
			t.Errorf("k8s shard %d: exit %d\n%s", i, r.code, r.stderr)
		}
		if s := decodeRun(t, f, mustRead(t, f)); s.RunID != runID+"/"+uid || s.PolicySHA256 != policySHA {
			t.Errorf("k8s shard %d: run_id %q policy_sha256 %q, want %q and the policy's %s", i, s.RunID, s.PolicySHA256, runID+"/"+uid, policySHA)
		}
		files = append(files, f)
	}
	if out, err := sh(job.wait, "SHARDS="+strconv.Itoa(job.shards), "RUN_ID="+runID); err != nil {
		t.Fatalf("the wait-for-shards script: %v\n%s", err, out)
	}
	var rargs []string
	for _, a := range job.report[1:] {
		rargs = append(rargs, kube.Replace(a))
	}
	compare("the Kubernetes Jobs (N=7)", job.shards, files, rargs, func(result) []byte {
		if st, err := os.Stat(filepath.Join(rdir, "current", "harden-report.html")); err != nil || st.Size() == 0 {
			t.Errorf("no dashboard beside the merged JSON in /reports/current: %v", err)
		}
		data := mustRead(t, filepath.Join(rdir, "runs", runID, "harden-report.json"))
		if m := decodeRun(t, "the merged run", data); m.RunID != runID+"/"+uid || m.PolicySHA256 != policySHA {
			t.Errorf("the merged run: run_id %q policy_sha256 %q", m.RunID, m.PolicySHA256)
		}
		return data
	})
	// A run id used twice: the merge is refused (claimed), and so is a
	// second shards Job writing under it; a run id holding two Jobs'
	// shards is never merged, whichever came first.
	if out, err := sh(job.wait, "SHARDS="+strconv.Itoa(job.shards), "RUN_ID="+runID); err == nil || !strings.Contains(out, "run id "+runID+" was merged already") {
		t.Errorf("the wait script over a merged run id: %v\n%s", err, out)
	}
	if out, err := sh(job.runDir, "RUN_ID="+runID, "JOB_UID=other-uid"); err == nil || !strings.Contains(out, "already holds the shards of another Job") {
		t.Errorf("a second shards Job under one run id: %v\n%s", err, out)
	}
	for _, u := range []string{"job-a", "job-b"} {
		d := filepath.Join(rdir, "runs", "twice", u)
		os.MkdirAll(d, 0o755)
		for i, f := range files {
			os.WriteFile(filepath.Join(d, fmt.Sprintf("shard-%d.json", i)), mustRead(t, f), 0o644)
		}
	}
	if out, err := sh(job.wait, "SHARDS="+strconv.Itoa(job.shards), "RUN_ID=twice"); err == nil || !strings.Contains(out, "holds the shards of 2 Jobs") {
		t.Errorf("the wait script over two Jobs' shards: %v\n%s", err, out)
	}
	if out, err := sh(job.runDir, "RUN_ID=../x", "JOB_UID="+uid); err == nil || !strings.Contains(out, `run-id "../x"`) {
		t.Errorf("a run id that is a path: %v\n%s", err, out)
	}

	// N = 7 as the Nomad job runs it.
	nj := readNomadJob(t)
	ndir := filepath.Join(dir, "nomad")
	jobID := "harden-verify/dispatch-1767225600-0a1b2c3d"
	nomad := func(s string, alloc int) string {
		return strings.NewReplacer("${NOMAD_ALLOC_INDEX}", strconv.Itoa(alloc), "${NOMAD_JOB_ID}", jobID, "${NOMAD_META_fail_on}", "info",
			"/local/policy.yaml", policy, "/reports", ndir).Replace(s)
	}
	var nfiles []string
	for i := range nj.count {
		if out, err := exec.Command(nj.mkdir[0], nomadArgs(nj.mkdir[1:], i, nomad)...).CombinedOutput(); err != nil {
			t.Fatalf("the rundir task: %v\n%s", err, out)
		}
		f := filepath.Join(ndir, jobID, fmt.Sprintf("shard-%d.json", i))
		if r := run(nil, nomadArgs(nj.verify, i, nomad)...); r.code != shardExit(t, f) {
			t.Errorf("nomad shard %d: exit %d\n%s", i, r.code, r.stderr)
		}
		if s := decodeRun(t, f, mustRead(t, f)); s.RunID != jobID || s.PolicySHA256 != policySHA {
			t.Errorf("nomad shard %d: run_id %q policy_sha256 %q, want %q and the policy's", i, s.RunID, s.PolicySHA256, jobID)
		}
		nfiles = append(nfiles, f)
	}
	nwait := exec.Command("/bin/sh", nomadArgs(nj.wait, 0, nomad)...)
	nwait.Env = append(os.Environ(), "SHARDS="+strconv.Itoa(nj.shardsEnv), "NOMAD_JOB_ID="+jobID)
	if out, err := nwait.CombinedOutput(); err != nil {
		t.Fatalf("the wait-for-shards task: %v\n%s", err, out)
	}
	compare("the Nomad job (N=7)", nj.count, nfiles, nomadArgs(nj.report, 0, nomad), func(result) []byte {
		return mustRead(t, filepath.Join(ndir, jobID, "harden-report.json"))
	})

	// Shards of two runs (each complete, same policy) are never merged:
	// harden report names the file of the other run.
	mixed := append(slices.Clone(files[:len(files)-1]), nfiles[len(nfiles)-1])
	var margs []string
	for _, f := range mixed {
		margs = append(margs, "-i", f)
	}
	if r := run(nil, append([]string{"report", "--format", "json"}, margs...)...); r.code != cli.ExitConfig ||
		!strings.Contains(r.stderr, fmt.Sprintf("%s is of run %q, %s of run %q", nfiles[len(nfiles)-1], jobID, files[0], runID+"/"+uid)) || r.stdout != "" {
		t.Errorf("shards of two runs: exit %d\n%s", r.code, r.stderr)
	}

	// A policy update that reached one shard late (a comment is enough to
	// make another version): the merge is refused, naming that shard.
	if err := os.WriteFile(policy, []byte(doc+"# updated\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	late := filepath.Join(dir, "n3", "shard-2-late.json")
	if r := run(nil, "verify", "-f", policy, "--shard", "2/3", "--format", "json", "-o", late); r.code != shardExit(t, late) {
		t.Errorf("the late shard: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(nil, "report", "-i", filepath.Join(dir, "n3", "shard-0.json"), "-i", filepath.Join(dir, "n3", "shard-1.json"), "-i", late); r.code != cli.ExitConfig ||
		!strings.Contains(r.stderr, late+" was verified against policy version") || !strings.Contains(r.stderr, "the policy changed between the shards") {
		t.Errorf("shards of two policy versions: exit %d\n%s", r.code, r.stderr)
	}

	// A bad --shard is a configuration error naming the flag, before any
	// target is contacted.
	if r := run(nil, "verify", "-f", policy, "--shard", "7/7"); r.code != cli.ExitConfig || !strings.Contains(r.stderr, `--shard "7/7"`) || strings.Contains(r.stdout, "cache-") {
		t.Errorf("--shard 7/7: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(nil, "verify", "-f", policy, "--shard", "auto/3"); r.code != cli.ExitConfig || !strings.Contains(r.stderr, "$JOB_COMPLETION_INDEX is not set") {
		t.Errorf("--shard auto/3 outside a Job: exit %d\n%s", r.code, r.stderr)
	}
}

func nomadArgs(args []string, alloc int, sub func(string, int) string) []string {
	var out []string
	for _, a := range args {
		out = append(out, sub(a, alloc))
	}
	return out
}

func decodeRun(t *testing.T, what string, data []byte) *report.Run {
	t.Helper()
	r, err := report.ReadRun(what, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return r
}

// normalizeRun is the run's JSON without what differs between runs.
func normalizeRun(t *testing.T, r *report.Run) string {
	t.Helper()
	c := *r
	// (The run id is the fleet files' and checked apart.)
	c.GeneratedAt, c.DurationMS, c.RunID = time.Time{}, 0, ""
	if c.Inventory != nil {
		inv := *c.Inventory
		inv.GeneratedAt = time.Time{}
		c.Inventory = &inv
	}
	var b bytes.Buffer
	if err := report.WriteJSON(&b, &c); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// shardExit is the exit code verify owes for the shard it wrote.
func shardExit(t *testing.T, file string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		return -1
	}
	r := decodeRun(t, file, data)
	if r.TargetErrors() > 0 || r.Summary["error"] > 0 {
		return cli.ExitTarget
	}
	if r.FailingAtOrAbove(0) > 0 {
		return cli.ExitFindings
	}
	return cli.ExitOK
}

func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d:\n got  %s\n want %s", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(g), len(w))
}

// The shipped deploy files for fleets.

// verifyJobs is what the Kubernetes file runs: the shards' count, the
// shard pods' command, the merge Job's wait script and command.
type verifyJobs struct {
	shards         int
	verify, report []string
	// runDir: the shard pods' init script; wait: the merge Job's.
	runDir, wait string
}

type shardContainer struct {
	Name            string   `yaml:"name"`
	Image           string   `yaml:"image"`
	ImagePullPolicy string   `yaml:"imagePullPolicy"`
	Command         []string `yaml:"command"`
	Env             []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			ConfigMapKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"configMapKeyRef"`
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type shardJobSpec struct {
	CompletionMode       string `yaml:"completionMode"`
	Completions          *int   `yaml:"completions"`
	Parallelism          *int   `yaml:"parallelism"`
	BackoffLimit         *int   `yaml:"backoffLimit"`
	BackoffLimitPerIndex *int   `yaml:"backoffLimitPerIndex"`
	PodFailurePolicy     *struct {
		Rules []struct {
			Action      string `yaml:"action"`
			OnExitCodes struct {
				ContainerName string `yaml:"containerName"`
				Operator      string `yaml:"operator"`
				Values        []int  `yaml:"values"`
			} `yaml:"onExitCodes"`
		} `yaml:"rules"`
	} `yaml:"podFailurePolicy"`
	ActiveDeadlineSeconds *int `yaml:"activeDeadlineSeconds"`
	Template              struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			RestartPolicy                string `yaml:"restartPolicy"`
			AutomountServiceAccountToken *bool  `yaml:"automountServiceAccountToken"`
			SecurityContext              struct {
				RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
				RunAsUser      *int  `yaml:"runAsUser"`
				RunAsGroup     *int  `yaml:"runAsGroup"`
				FSGroup        *int  `yaml:"fsGroup"`
				SeccompProfile struct {
					Type string `yaml:"type"`
				} `yaml:"seccompProfile"`
			} `yaml:"securityContext"`
			InitContainers []shardContainer `yaml:"initContainers"`
			Containers     []shardContainer `yaml:"containers"`
			Volumes        []struct {
				Name      string `yaml:"name"`
				ConfigMap *struct {
					Name string `yaml:"name"`
				} `yaml:"configMap"`
				Secret *struct {
					SecretName  string `yaml:"secretName"`
					DefaultMode int    `yaml:"defaultMode"`
				} `yaml:"secret"`
				PersistentVolumeClaim *struct {
					ClaimName string `yaml:"claimName"`
				} `yaml:"persistentVolumeClaim"`
				EmptyDir *struct {
					Medium    string `yaml:"medium"`
					SizeLimit string `yaml:"sizeLimit"`
				} `yaml:"emptyDir"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

// readVerifyJobs decodes deploy/kubernetes/harden-verify-indexed-job.yaml
// strictly (a key at the wrong level fails) and checks what makes the
// shards and the merge work together.
func readVerifyJobs(t *testing.T) verifyJobs {
	t.Helper()
	file := filepath.Join(deployDir, "kubernetes", "harden-verify-indexed-job.yaml")
	dec := yaml.NewDecoder(bytes.NewReader(mustRead(t, file)))
	dec.KnownFields(true)
	jobs := map[string]*shardJobSpec{}
	pvcs := map[string]pvcSpec{}
	for {
		var d k8sDoc
		if err := dec.Decode(&d); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("%s: %v", file, err)
		}
		switch {
		case d.APIVersion == "batch/v1" && d.Kind == "Job":
			j := new(shardJobSpec)
			decodeStrict(t, &d.Spec, j)
			jobs[d.Metadata.Name] = j
		case d.APIVersion == "v1" && d.Kind == "PersistentVolumeClaim":
			var p pvcSpec
			decodeStrict(t, &d.Spec, &p)
			pvcs[d.Metadata.Name] = p
		default:
			t.Fatalf("unexpected document %s %s", d.APIVersion, d.Kind)
		}
	}
	shards, merge := jobs["harden-verify-shards"], jobs["harden-report"]
	if shards == nil || merge == nil || len(jobs) != 2 {
		t.Fatalf("%s: jobs %v, want harden-verify-shards and harden-report", file, jobs)
	}
	var out verifyJobs
	if shards.CompletionMode != "Indexed" || shards.Completions == nil || shards.Parallelism == nil || *shards.Parallelism != *shards.Completions {
		t.Fatalf("the shards Job: completionMode %q completions %v parallelism %v", shards.CompletionMode, shards.Completions, shards.Parallelism)
	}
	out.shards = *shards.Completions
	final := map[int]string{}
	for _, r := range shards.PodFailurePolicy.Rules {
		for _, v := range r.OnExitCodes.Values {
			final[v] = r.Action
		}
	}
	if final[cli.ExitFindings] != "FailIndex" || final[cli.ExitTarget] != "FailIndex" || final[cli.ExitConfig] != "FailJob" || shards.BackoffLimitPerIndex == nil {
		t.Errorf("podFailurePolicy %v: findings and target errors must not be retried (a late retry leaves a stale shard)", final)
	}
	if merge.BackoffLimit == nil || *merge.BackoffLimit != 0 {
		t.Errorf("harden-report backoffLimit %v: its exit code is the verdict", merge.BackoffLimit)
	}
	for name, j := range jobs {
		pod := j.Template.Spec
		sc := pod.SecurityContext
		if pod.RestartPolicy != "Never" || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 ||
			pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken || j.ActiveDeadlineSeconds == nil {
			t.Errorf("%s: pod %+v", name, pod.SecurityContext)
		}
		for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
			csc := c.SecurityContext
			if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
				!slicesContains(csc.Capabilities.Drop, "ALL") {
				t.Errorf("%s/%s: securityContext %+v", name, c.Name, csc)
			}
			mounted := false
			for _, m := range c.VolumeMounts {
				for _, v := range pod.Volumes {
					if v.Name == m.Name && v.PersistentVolumeClaim != nil && m.MountPath == "/reports" && !m.ReadOnly {
						mounted = true
						if p, ok := pvcs[v.PersistentVolumeClaim.ClaimName]; !ok || !slicesContains(p.AccessModes, "ReadWriteMany") {
							t.Errorf("%s: claim %s is not a ReadWriteMany claim of this file", name, v.PersistentVolumeClaim.ClaimName)
						}
					}
				}
			}
			if !mounted {
				t.Errorf("%s/%s: /reports is not the shared claim", name, c.Name)
			}
		}
	}
	if c := shards.Template.Spec.Containers; len(c) != 1 || c[0].Name != "harden" || filepath.Base(c[0].Command[0]) != "harden" {
		t.Fatalf("the shards Job's containers %+v", c)
	}
	out.verify = shards.Template.Spec.Containers[0].Command
	if !slices.Contains(out.verify, fmt.Sprintf("$(JOB_COMPLETION_INDEX)/%d", out.shards)) {
		t.Errorf("the shard pods run %q: want --shard $(JOB_COMPLETION_INDEX)/%d (completions)", out.verify, out.shards)
	}
	// One run: the run id from the harden-run ConfigMap in every
	// container that names it, the Job's uid from the downward API; the
	// shard records both and writes under both.
	if i := slices.Index(out.verify, "--run-id"); i < 0 || out.verify[i+1] != "$(RUN_ID)/$(JOB_UID)" ||
		out.verify[slices.Index(out.verify, "-o")+1] != "/reports/runs/$(RUN_ID)/$(JOB_UID)/shard-$(JOB_COMPLETION_INDEX).json" {
		t.Errorf("the shard pods run %q: want --run-id $(RUN_ID)/$(JOB_UID) and -o under /reports/runs/$(RUN_ID)/$(JOB_UID)/", out.verify)
	}
	mp := merge.Template.Spec
	if ic := shards.Template.Spec.InitContainers; len(ic) != 1 || len(ic[0].Command) != 3 || ic[0].Command[0] != "/bin/sh" {
		t.Fatalf("harden-verify-shards: initContainers %+v", ic)
	}
	if len(mp.InitContainers) != 1 || len(mp.InitContainers[0].Command) != 3 || mp.InitContainers[0].Command[0] != "/bin/sh" || len(mp.Containers) != 1 {
		t.Fatalf("harden-report: initContainers %+v", mp.InitContainers)
	}
	for what, c := range map[string]shardContainer{"the shards' init container": shards.Template.Spec.InitContainers[0], "the shards' harden container": shards.Template.Spec.Containers[0],
		"the merge's wait container": mp.InitContainers[0]} {
		env := map[string]string{}
		for _, e := range c.Env {
			switch {
			case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil:
				env[e.Name] = "configmap " + e.ValueFrom.ConfigMapKeyRef.Name + "/" + e.ValueFrom.ConfigMapKeyRef.Key
			case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
				env[e.Name] = "field " + e.ValueFrom.FieldRef.FieldPath
			default:
				env[e.Name] = e.Value
			}
		}
		if env["RUN_ID"] != "configmap harden-run/run-id" {
			t.Errorf("%s: RUN_ID is %q, want the harden-run ConfigMap's run-id", what, env["RUN_ID"])
		}
		switch {
		case c.Name == "wait-for-shards" && env["SHARDS"] != strconv.Itoa(out.shards):
			t.Errorf("%s: SHARDS %q, want %d (completions)", what, env["SHARDS"], out.shards)
		case c.Name != "wait-for-shards" && env["JOB_UID"] != "field metadata.labels['batch.kubernetes.io/controller-uid']":
			t.Errorf("%s: JOB_UID %q, want the Job's controller-uid label", what, env["JOB_UID"])
		}
	}
	out.runDir = shards.Template.Spec.InitContainers[0].Command[2]
	out.wait = mp.InitContainers[0].Command[2]
	out.report = mp.Containers[0].Command
	if filepath.Base(out.report[0]) != "harden" || out.report[1] != "report" || !slices.Contains(out.report, "/merge/shards/shard-*.json") {
		t.Errorf("harden-report runs %q: want the shards the wait script chose (/merge/shards)", out.report)
	}
	// /merge: the wait script's links, in a volume of the pod only.
	for _, c := range slices.Concat(mp.InitContainers, mp.Containers) {
		ok := false
		for _, m := range c.VolumeMounts {
			for _, v := range mp.Volumes {
				ok = ok || m.MountPath == "/merge" && v.Name == m.Name && v.EmptyDir != nil
			}
		}
		if !ok {
			t.Errorf("harden-report/%s: /merge is not the pod's emptyDir", c.Name)
		}
	}
	return out
}

// nomadJob is what deploy/nomad/harden-verify.nomad.hcl runs.
type nomadJob struct {
	count, shardsEnv int
	mkdir, verify    []string
	wait, report     []string
	parameterized    map[string]any
}

// readNomadJob parses the Nomad job with the HCL parser Nomad's jobspec
// grew from and checks what makes the shards and the merge work together.
func readNomadJob(t *testing.T) nomadJob {
	t.Helper()
	file := filepath.Join(deployDir, "nomad", "harden-verify.nomad.hcl")
	var doc map[string]any
	if err := hcl.Decode(&doc, string(mustRead(t, file))); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	one := func(v any, key string) map[string]any {
		t.Helper()
		l, ok := v.(map[string]any)[key].([]map[string]any)
		if !ok || len(l) != 1 {
			t.Fatalf("%s: want one %s block, got %#v", file, key, v.(map[string]any)[key])
		}
		return l[0]
	}
	named := func(v any, key string) map[string]map[string]any {
		t.Helper()
		out := map[string]map[string]any{}
		l, _ := v.(map[string]any)[key].([]map[string]any)
		for _, b := range l {
			for name, body := range b {
				out[name] = body.([]map[string]any)[0]
			}
		}
		return out
	}
	strs := func(v any) []string {
		var out []string
		l, _ := v.([]any)
		for _, s := range l {
			out = append(out, s.(string))
		}
		return out
	}
	job := named(doc, "job")["harden-verify"]
	if job == nil || job["type"] != "batch" {
		t.Fatalf("%s: no batch job harden-verify: %v", file, doc)
	}
	var nj nomadJob
	nj.parameterized = one(job, "parameterized")
	groups := named(job, "group")
	shards, rep := groups["shards"], groups["report"]
	if shards == nil || rep == nil || len(groups) != 2 {
		t.Fatalf("%s: groups %v, want shards and report", file, groups)
	}
	nj.count = shards["count"].(int)
	for name, g := range groups {
		vol := named(g, "volume")["reports"]
		if vol == nil || vol["access_mode"] != "multi-node-multi-writer" {
			t.Errorf("group %s: the reports volume %v is not shared by every client", name, vol)
		}
		if one(g, "restart")["attempts"] != 0 || one(g, "reschedule")["attempts"] != 0 {
			t.Errorf("group %s retries: exit 2 and 3 are verdicts", name)
		}
	}
	st, rt := named(shards, "task"), named(rep, "task")
	cfg := func(task map[string]any) []string {
		c := one(task, "config")
		return append([]string{c["command"].(string)}, strs(c["args"])...)
	}
	nj.mkdir, nj.verify = cfg(st["rundir"]), cfg(st["verify"])[1:]
	if one(st["rundir"], "lifecycle")["hook"] != "prestart" || one(rt["wait-for-shards"], "lifecycle")["hook"] != "prestart" {
		t.Error("the rundir and wait-for-shards tasks are not prestart tasks")
	}
	if !slices.Contains(nj.verify, fmt.Sprintf("${NOMAD_ALLOC_INDEX}/%d", nj.count)) || nj.verify[0] != "verify" {
		t.Errorf("the verify task runs %q: want verify --shard ${NOMAD_ALLOC_INDEX}/%d (the group's count)", nj.verify, nj.count)
	}
	w := cfg(rt["wait-for-shards"])
	if w[0] != "/bin/sh" || len(w) != 3 || w[1] != "-c" {
		t.Fatalf("wait-for-shards runs %q", w)
	}
	nj.wait = w[1:]
	nj.shardsEnv, _ = strconv.Atoi(one(rt["wait-for-shards"], "env")["SHARDS"].(string))
	if nj.shardsEnv != nj.count {
		t.Errorf("the wait task's SHARDS %d, the shards group's count %d", nj.shardsEnv, nj.count)
	}
	nj.report = cfg(rt["report"])[1:]
	if nj.report[0] != "report" {
		t.Errorf("the report task runs %q", nj.report)
	}
	return nj
}

// The deploy files' harden command lines are harden's: parsed by the CLI
// against a policy that does not exist, they end there (exit 1), never
// at an unknown flag. Runs without servers.
func TestDeployVerifyFleetFiles(t *testing.T) {
	job := readVerifyJobs(t)
	nj := readNomadJob(t)
	rd := t.TempDir()
	missing := filepath.Join(rd, "policy.yaml")
	// The directories the init scripts make.
	os.MkdirAll(filepath.Join(rd, "runs", "20260301T120000Z", "6f1c0e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b"), 0o755)
	os.MkdirAll(filepath.Join(rd, "merge", "run"), 0o755)
	os.Mkdir(filepath.Join(rd, "dispatch"), 0o755)
	sub := strings.NewReplacer("/etc/harden/policy.yaml", missing, "/local/policy.yaml", missing, "$(JOB_COMPLETION_INDEX)", "2",
		"$(RUN_ID)", "20260301T120000Z", "$(JOB_UID)", "6f1c0e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
		"${NOMAD_ALLOC_INDEX}", "2", "${NOMAD_META_fail_on}", "info", "${NOMAD_JOB_ID}", "dispatch", "/reports", rd, "/merge", filepath.Join(rd, "merge"))
	for what, c := range map[string]struct {
		args []string
		want string
	}{
		"the Indexed Job": {job.verify[1:], missing + ": not found"}, "the Nomad verify task": {nj.verify, missing + ": not found"},
		"harden-report":         {job.report[1:], filepath.Join(rd, "merge", "shards", "shard-*.json") + ": no file matches"},
		"the Nomad report task": {nj.report, filepath.Join(rd, "dispatch", "shard-*.json") + ": no file matches"},
	} {
		var argv []string
		for _, a := range c.args {
			argv = append(argv, sub.Replace(a))
		}
		var out, errb strings.Builder
		code := cli.Run(context.Background(), append([]string{"harden"}, argv...), cli.IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
			IsTerminal: func() bool { return false }, Getenv: func(string) (string, bool) { return "", false }})
		if code != cli.ExitConfig || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%s: %q: exit %d, want 1 with %q\n%s", what, argv, code, c.want, errb.String())
		}
	}
	if m, _ := filepath.Glob(filepath.Join(rd, "*", ".*.tmp")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
	if p := nj.parameterized; p["payload"] != "forbidden" {
		t.Errorf("parameterized %v", p)
	}
}
