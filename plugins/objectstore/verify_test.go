package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
)

// refusingFS is a file system on which the named files cannot be opened
// (a 0600 file of another user, as the tests run as root), and the files
// under failAfter fail after that many bytes (an I/O error mid-file).
type refusingFS struct {
	fs.FS
	refuse    map[string]bool
	failAfter map[string]int
}

func (r refusingFS) Open(name string) (fs.File, error) {
	if r.refuse[name] {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	f, err := r.FS.Open(name)
	if n, ok := r.failAfter[name]; ok && err == nil {
		return &failingFile{File: f, left: n}, nil
	}
	return f, err
}

type failingFile struct {
	fs.File
	left int
}

func (f *failingFile) Read(b []byte) (int, error) {
	if f.left <= 0 {
		return 0, errors.New("input/output error")
	}
	if len(b) > f.left {
		b = b[:f.left]
	}
	n, err := f.File.Read(b)
	f.left -= n
	return n, err
}

// The at-rest search streams files through one small buffer: a needle
// anywhere — across every possible buffer boundary — is found, and a file
// it cannot read leaves the search incomplete rather than "not found".
func TestSearchTree(t *testing.T) {
	needle := []byte("CANARY-0123456789")
	const buf = 16
	// Every offset around the first three buffer boundaries.
	for off := 0; off <= 3*buf+len(needle); off++ {
		data := append(bytes.Repeat([]byte{'.'}, off), needle...)
		data = append(data, bytes.Repeat([]byte{'.'}, 5)...)
		fsys := fstest.MapFS{"vol/1.dat": {Data: []byte("nothing here")}, "vol/2.dat": {Data: data}}
		s := searchTree(fsys, "/data", needle, buf)
		if s.found != filepath.Join("/data", "vol", "2.dat") || len(s.unreadable) != 0 {
			t.Fatalf("needle at offset %d with a %d-byte buffer: found %q, unreadable %v", off, buf, s.found, s.unreadable)
		}
	}
	// The needle only as its two halves in two files is not a match.
	halves := fstest.MapFS{"a": {Data: needle[:8]}, "b": {Data: needle[8:]}}
	if s := searchTree(halves, "/d", needle, buf); s.found != "" || s.files != 2 {
		t.Errorf("halves in two files: %+v", s)
	}

	base := fstest.MapFS{
		"vol/1.dat":   {Data: bytes.Repeat([]byte("x"), 100)},
		"vol/2.dat":   {Data: append(bytes.Repeat([]byte("y"), 40), needle...)},
		"filer/meta":  {Data: []byte("meta")},
		"vol/big.dat": {Data: append(bytes.Repeat([]byte("z"), 1000), needle...)},
	}
	tests := map[string]struct {
		fsys           fs.FS
		wantFound      string
		wantUnreadable []string
	}{
		"canary in a refused file": {refusingFS{FS: base, refuse: map[string]bool{"vol/2.dat": true, "vol/big.dat": true}}, "", []string{"vol/2.dat", "vol/big.dat"}},
		"read error before the canary": {refusingFS{FS: base, refuse: map[string]bool{"vol/2.dat": true}, failAfter: map[string]int{"vol/big.dat": 500}},
			"", []string{"vol/2.dat", "vol/big.dat"}},
		"found despite another unreadable file": {refusingFS{FS: base, refuse: map[string]bool{"filer/meta": true}}, "vol/2.dat", []string{"filer/meta"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := searchTree(tc.fsys, "/data", needle, buf)
			want := ""
			if tc.wantFound != "" {
				want = filepath.Join("/data", tc.wantFound)
			}
			if s.found != want {
				t.Errorf("found %q, want %q", s.found, want)
			}
			if s.found == "" && len(s.unreadable) != len(tc.wantUnreadable) {
				t.Errorf("unreadable %v, want %v", s.unreadable, tc.wantUnreadable)
			}
			for _, u := range tc.wantUnreadable {
				if s.found == "" && !strings.Contains(strings.Join(s.unreadable, "\n"), filepath.Join("/data", u)) {
					t.Errorf("%s not reported unreadable: %v", u, s.unreadable)
				}
			}
		})
	}
}

// On a real directory, as root: a file whose read fails whatever the
// permissions (a symlink to /proc/self/mem: EIO at offset 0), and a
// symlinked directory the walk does not follow, both count as not searched.
func TestSearchTreeRealDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "volume.dat"), []byte("ciphertext"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc/self/mem", filepath.Join(dir, "unreadable.dat")); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := os.Symlink(other, filepath.Join(dir, "volumes")); err != nil {
		t.Fatal(err)
	}
	s := searchTree(os.DirFS(dir), dir, []byte("needle-needle"), searchBuffer)
	all := strings.Join(s.unreadable, "\n")
	if s.found != "" || len(s.unreadable) != 2 || !strings.Contains(all, "unreadable.dat") || !strings.Contains(all, "symlinked directory") {
		t.Errorf("search: %+v", s)
	}
}

// fakeS3 serves gofakes3 over TLS; wrap may refuse some requests.
func fakeS3(t *testing.T, backend gofakes3.Backend, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	var h http.Handler = gofakes3.New(backend).Server()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	if err := backend.CreateBucket("lake"); err != nil {
		t.Fatal(err)
	}
	return srv
}

// fakeTarget is an objectstore target on srv (conn merged into the
// connection block, spec as given).
func fakeTarget(t *testing.T, srv *httptest.Server, conn map[string]any, spec string) *target {
	t.Helper()
	c := map[string]any{"endpoint": srv.URL}
	for k, v := range conn {
		c[k] = v
	}
	connJSON, _ := json.Marshal(c)
	rc := sdk.RequestContext{Target: sdk.NewTarget("fake", connJSON, []byte(spec), map[string][]byte{"access_key": []byte("a"), "secret_key": []byte("s")})}
	var d sdk.Diagnostics
	tg, ok := open(rc, &d)
	if !ok {
		t.Fatal(d.Err())
	}
	var err error
	if tg.cl, err = newTestClient(srv.URL, srv.Client().Transport); err != nil {
		t.Fatal(err)
	}
	return tg
}

// The canary on a server that stores plaintext, with the file holding it
// unreadable to harden: inconclusive (an error naming the file and the
// count), not "in none of the files" as before. Without the refusal the
// same setup fails (the bytes are found). A data dir that does not grow is
// inconclusive too.
func TestCanaryInconclusiveWhenFilesCannotBeRead(t *testing.T) {
	dir := t.TempDir()
	be, err := s3bolt.NewFile(filepath.Join(dir, "fake.db"))
	if err != nil {
		t.Fatal(err)
	}
	tg := fakeTarget(t, fakeS3(t, be, nil), map[string]any{"data_dir": dir}, `{"bucket": "lake"}`)
	tg.dataFS = refusingFS{FS: os.DirFS(dir), refuse: map[string]bool{"fake.db": true}}
	c := tg.canary(context.Background(), "fake")
	if c.Status != checks.Error || c.Inconclusive != 1 || !strings.Contains(c.Evidence, "1 file(s) could not be searched") || !strings.Contains(c.Evidence, filepath.Join(dir, "fake.db")) {
		t.Errorf("canary with its file unreadable: %s (%d inconclusive): %s", c.Status, c.Inconclusive, c.Evidence)
	}
	tg.dataFS = nil
	if c := tg.canary(context.Background(), "fake"); c.Status != checks.Fail {
		t.Errorf("control, the same file readable: %s %s", c.Status, c.Evidence)
	}

	// The objects are stored elsewhere: the data dir does not grow.
	elsewhere := t.TempDir()
	tg = fakeTarget(t, fakeS3(t, s3mem.New(), nil), map[string]any{"data_dir": elsewhere}, `{"bucket": "lake"}`)
	if c := tg.canary(context.Background(), "fake"); c.Status != checks.Error || !strings.Contains(c.Evidence, "grew by") {
		t.Errorf("canary with a data dir that does not grow: %s %s", c.Status, c.Evidence)
	}
	// The data dir itself unreadable.
	tg.dataFS = refusingFS{FS: os.DirFS(elsewhere), refuse: map[string]bool{".": true}}
	if c := tg.canary(context.Background(), "fake"); c.Status != checks.Error || !strings.Contains(c.Evidence, "read data_dir") {
		t.Errorf("canary with an unreadable data dir: %s %s", c.Status, c.Evidence)
	}
}

// objectstore.policy.denies judges what the statements say, not their names.
func TestPolicyDeniesJudgedByContent(t *testing.T) {
	s := spec{Bucket: "lake", SensitivePrefixes: []string{"pii/"}, SSE: sseSpec{Algorithm: "aws:kms", KMSKeyID: "k"}}
	hardened, err := mergePolicy(bucketPolicy{}, "lake", s)
	if err != nil {
		t.Fatal(err)
	}
	// edit returns the hardened policy with statement sid changed by f.
	edit := func(sid string, f func(st map[string]any)) string {
		var p map[string]any
		_ = json.Unmarshal([]byte(hardened), &p)
		for _, st := range p["Statement"].([]any) {
			if m := st.(map[string]any); m["Sid"] == sid {
				f(m)
			}
		}
		b, _ := json.Marshal(p)
		return string(b)
	}
	tests := map[string]struct {
		policy  string
		deny    string // the deny that must be judged missing ("" = none)
		because string
	}{
		"harden's statements":    {hardened, "", ""},
		"Effect Allow, same Sid": {edit("HardenDenyUnencryptedUpload", func(m map[string]any) { m["Effect"] = "Allow" }), denyUnencrypted, "Effect is Allow"},
		"an extra condition narrows the deny": {edit("HardenDenyInsecureTransport", func(m map[string]any) {
			m["Condition"].(map[string]any)["StringEquals"] = map[string]any{"aws:username": "mallory"}
		}), denyTransport, "Condition must be exactly"},
		"only some principals":      {edit("HardenDenyInsecureTransport", func(m map[string]any) { m["Principal"] = map[string]any{"AWS": "arn:aws:iam::1:user/x"} }), denyTransport, "not everyone"},
		"only GetObject over http":  {edit("HardenDenyInsecureTransport", func(m map[string]any) { m["Action"] = []any{"s3:GetObject", "s3:PutObject"} }), denyTransport, "does not cover s3:*"},
		"only the curated/ objects": {edit("HardenDenyUnencryptedUpload", func(m map[string]any) { m["Resource"] = "arn:aws:s3:::lake/curated/*" }), denyUnencrypted, "does not cover arn:aws:s3:::lake/*"},
		"SecureTransport=true": {edit("HardenDenyInsecureTransport", func(m map[string]any) {
			m["Condition"] = map[string]any{"Bool": map[string]any{"aws:SecureTransport": "true"}}
		}), denyTransport, "is [true], not [false]"},
		"AES256 allowed on a KMS bucket": {edit("HardenDenyUnapprovedAlgorithm", func(m map[string]any) {
			m["Condition"] = map[string]any{"StringNotEquals": map[string]any{"s3:x-amz-server-side-encryption": []any{"aws:kms", "AES256"}}}
		}), denyAlgorithm, "not only [aws:kms]"},
		"NotResource": {edit("HardenDenyInsecureTransport", func(m map[string]any) { m["NotResource"] = m["Resource"]; delete(m, "Resource") }), denyTransport, "NotResource narrows it"},
		"the Sid on another statement": {edit("HardenDenyUnencryptedUpload", func(m map[string]any) {
			m["Condition"] = map[string]any{"Null": map[string]any{"s3:x-amz-server-side-encryption": "false"}}
		}), denyUnencrypted, "is [false], not [true]"},
		"another name, the right content, values re-serialised": {edit("HardenDenyInsecureTransport", func(m map[string]any) {
			m["Sid"], m["Principal"], m["Action"] = "OpsTLSOnly", map[string]any{"AWS": []any{"*"}}, "*"
			m["Condition"] = map[string]any{"Bool": map[string]any{"aws:securetransport": false}}
			m["Resource"] = "arn:aws:s3:::lake*"
		}), "", ""},
		"no policy": {"", denyTransport, "no statement with this content"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := parsePolicy(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range requiredDenies("lake", s) {
				_, ok, why := judgeDeny(p, r)
				if r.id == tc.deny {
					if ok || !strings.Contains(why, tc.because) {
						t.Errorf("%s: judged present=%v, why %q (want missing because %q)", r.id, ok, why, tc.because)
					}
				} else if !ok && (tc.deny == "" || name != "no policy") {
					t.Errorf("%s judged missing: %s", r.id, why)
				}
			}
		})
	}
}

// objectstore.policy.denies rests on the policy's content AND the live refusals:
// a right-looking policy the server does not enforce fails; a refusal that
// could not be observed makes it an error; only both good pass.
func TestPolicyCheckCombinesLiveRefusals(t *testing.T) {
	s := spec{Bucket: "lake", SSE: sseSpec{Algorithm: "AES256"}}
	hardened, _ := mergePolicy(bucketPolicy{}, "lake", s)
	tg := &target{spec: s, conn: connection{HTTPEndpoint: "http://s3:8333"}}
	forbidden := minio.ErrorResponse{StatusCode: http.StatusForbidden, Code: "AccessDenied"}
	refusedAll := []attempt{{deny: denyTransport, obs: refusal("PUT over http", forbidden)}, {deny: denyUnencrypted, obs: refusal("PUT without SSE", forbidden)}}
	tests := map[string]struct {
		policy string
		tries  []attempt
		want   checks.Status
		in     string
	}{
		"content and refusals": {hardened, refusedAll, checks.Pass, "configuration only: every valid algorithm is approved"},
		"not enforced": {hardened, []attempt{{deny: denyTransport, obs: refusal("PUT over http", forbidden)}, {deny: denyUnencrypted, obs: refusal("PUT without SSE", nil)}},
			checks.Fail, "live: PUT without SSE accepted"},
		"refusal not observed": {hardened, []attempt{{deny: denyTransport, obs: refusal("PUT over http", forbidden)}, {deny: denyUnencrypted, obs: refusal("PUT without SSE", &net.OpError{Op: "read", Err: errors.New("connection reset by peer")})}},
			checks.Error, "connection reset"},
		"another error is no refusal": {hardened, []attempt{{deny: denyUnencrypted, obs: refusal("PUT without SSE", minio.ErrorResponse{StatusCode: 503, Code: "SlowDown"})}}, checks.Error, "503 SlowDown"},
		"refused, but the policy lacks the deny": {`{"Version":"2012-10-17","Statement":[{"Sid":"HardenDenyInsecureTransport","Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}`,
			refusedAll, checks.Fail, "Effect is Allow"},
		"garbled policy, refusals seen":      {`{"Statement": [`, refusedAll, checks.Error, "not a bucket policy"},
		"garbled policy, an upload accepted": {`{"Statement": [`, []attempt{{deny: denyUnencrypted, obs: refusal("PUT without SSE", nil)}}, checks.Fail, "live: PUT without SSE accepted"},
		"closed plaintext port exercises no statement": {hardened, []attempt{{deny: denyTransport, obs: checks.Good("PUT over http: connection refused"), portClosed: true}, {deny: denyUnencrypted, obs: refusal("PUT without SSE", forbidden)}},
			checks.Pass, "the plaintext port is closed"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := tg.policyCheck(tc.policy, "lake", tc.tries)
			if c.Status != tc.want || !strings.Contains(c.Evidence, tc.in) {
				t.Errorf("objectstore.policy.denies %s, want %s with %q: %s", c.Status, tc.want, tc.in, c.Evidence)
			}
		})
	}
}

// Answers to requests that must be refused, or accepted: only a 403 is a
// refusal; a reset, a timeout or another error concludes nothing.
func TestRefusalAndAcceptance(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	tests := map[string]struct {
		err              error
		refusal, accepts checks.Observation
	}{
		"accepted": {nil, checks.Bad("x accepted"), checks.Good("x accepted")},
		"403":      {minio.ErrorResponse{StatusCode: 403, Code: "AccessDenied"}, checks.Good("x refused: 403 AccessDenied"), checks.Bad("x refused: 403 AccessDenied")},
		// A 403 that is an authentication failure (a proxy rewriting Host,
		// a wrong key, a skewed clock) is no decision of the policy.
		"403 signature": {minio.ErrorResponse{StatusCode: 403, Code: "SignatureDoesNotMatch"}, checks.Unknown("x", ""), checks.Bad("x refused: 403 SignatureDoesNotMatch")},
		"403 clock":     {minio.ErrorResponse{StatusCode: 403, Code: "RequestTimeTooSkewed"}, checks.Unknown("x", ""), checks.Bad("x refused: 403 RequestTimeTooSkewed")},
		"404 is served": {minio.ErrorResponse{StatusCode: 404, Code: "NoSuchKey"}, checks.Bad("x served (404 NoSuchKey), not refused"), checks.Unknown("x", "")},
		"400":           {minio.ErrorResponse{StatusCode: 400, Code: "InvalidRequest"}, checks.Unknown("x", ""), checks.Unknown("x", "")},
		"reset":         {reset, checks.Unknown("x", ""), checks.Unknown("x", "")},
		"timeout":       {context.DeadlineExceeded, checks.Unknown("x", ""), checks.Unknown("x", "")},
	}
	same := func(got, want checks.Observation) bool {
		if !want.Conclusive() {
			return !got.Conclusive()
		}
		return got == want
	}
	for name, tc := range tests {
		if got := refusal("x", tc.err); !same(got, tc.refusal) {
			t.Errorf("%s: refusal = %+v, want %+v", name, got, tc.refusal)
		}
		if got := acceptance("x", tc.err); !same(got, tc.accepts) {
			t.Errorf("%s: acceptance = %+v, want %+v", name, got, tc.accepts)
		}
	}
}

// A plaintext endpoint that resets every connection proves nothing about
// plaintext (error); one whose port is closed accepts none (pass); the
// HTTPS endpoint is never confused with it.
func TestHTTPRefusedNeedsAnAnswer(t *testing.T) {
	srv := fakeS3(t, s3mem.New(), nil)
	resetter, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer resetter.Close()
	go func() {
		for {
			c, err := resetter.Accept()
			if err != nil {
				return
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // RST, not FIN
			}
			c.Close()
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	for name, tc := range map[string]struct {
		endpoint string
		want     checks.Status
	}{
		"resets":      {"http://" + resetter.Addr().String(), checks.Error},
		"port closed": {"http://" + closedAddr, checks.Pass},
	} {
		t.Run(name, func(t *testing.T) {
			tg := fakeTarget(t, srv, map[string]any{"http_endpoint": tc.endpoint}, `{"bucket": "lake"}`)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			tries := tg.httpAttempts(ctx, sdk.RequestContext{Target: sdk.NewTarget("fake", nil, nil, map[string][]byte{"access_key": []byte("a"), "secret_key": []byte("s")})})
			c := checks.Reduce("objectstore.http.refused", "fake", observations(tries)...)
			if c.Status != tc.want || len(tries) != 3 {
				t.Errorf("objectstore.http.refused over %s: %s: %s", tc.endpoint, c.Status, c.Evidence)
			}
		})
	}
}

// Zero objects under the envelope prefix is not a pass (it was, with
// "coverage 0/0"): nothing to judge is not applicable, with the prefix in
// the reason. A HEAD the server refuses is inconclusive, not a missing
// record; an object without a record fails.
func TestEnvelopeRecordsNeedObjects(t *testing.T) {
	be := s3mem.New()
	headRefused := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/secret/") {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	srv := fakeS3(t, be, headRefused)
	ctx := context.Background()
	tg := fakeTarget(t, srv, nil, `{"bucket": "lake", "envelope": {"kek": "local:abc", "prefix": "curated/"}}`)
	c := tg.envelopeRecords(ctx, "fake")
	if c.Status != checks.Skip || !strings.Contains(c.Evidence, `no objects under "curated/"`) {
		t.Errorf("empty prefix: %s %s", c.Status, c.Evidence)
	}
	put := func(key string) {
		if _, err := tg.cl.PutObject(ctx, "lake", key, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put("secret/a")
	tg = fakeTarget(t, srv, nil, `{"bucket": "lake", "envelope": {"kek": "local:abc", "prefix": "secret/"}}`)
	if c := tg.envelopeRecords(ctx, "fake"); c.Status != checks.Error || c.Inconclusive != 1 {
		t.Errorf("HEAD refused: %s (%d inconclusive) %s", c.Status, c.Inconclusive, c.Evidence)
	}
	if c := tg.sample(ctx, "fake"); c.Status != checks.Error || c.Inconclusive != 1 {
		t.Errorf("sample with its HEAD refused: %s (%d inconclusive) %s", c.Status, c.Inconclusive, c.Evidence)
	}
	put("curated/plain")
	tg = fakeTarget(t, srv, nil, `{"bucket": "lake", "envelope": {"kek": "local:abc", "prefix": "curated/"}}`)
	if c := tg.envelopeRecords(ctx, "fake"); c.Status != checks.Fail || !strings.Contains(c.Evidence, "without a record") {
		t.Errorf("object without a record: %s %s", c.Status, c.Evidence)
	}
}

// An empty bucket has nothing to sample: not applicable, not a pass.
func TestSampleEmptyBucket(t *testing.T) {
	tg := fakeTarget(t, fakeS3(t, s3mem.New(), nil), nil, `{"bucket": "lake"}`)
	if c := tg.sample(context.Background(), "fake"); c.Status != checks.Skip {
		t.Errorf("empty bucket: %s %s", c.Status, c.Evidence)
	}
}

// The search streams: a 256 MiB volume file (sparse, the canary at its
// end) is searched with about one buffer of memory, not read whole.
func TestSearchTreeBoundedMemory(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "volume.dat"))
	if err != nil {
		t.Fatal(err)
	}
	needle := []byte("the-canary-at-the-very-end-of-the-volume")
	const size = 256 << 20
	if _, err := f.WriteAt(needle, size-int64(len(needle))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := searchTree(os.DirFS(dir), dir, needle, searchBuffer)
	runtime.ReadMemStats(&after)
	if s.found == "" || s.bytes != size {
		t.Fatalf("canary at the end of a 256 MiB file: %+v", s)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*uint64(searchBuffer) {
		t.Errorf("searching 256 MiB allocated %d bytes (buffer %d)", alloc, searchBuffer)
	}
}
