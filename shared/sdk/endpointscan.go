package sdk

// EndpointScan is what a probe scan observed on one endpoint, as data for
// reports and dashboards: the checks judge the scan, this only describes
// it. probe.Result.Describe builds one; a plugin's verify appends it to
// VerifyResponse.Endpoints. Optional: a report without it still has every
// check, it only lacks the per-endpoint matrix.
type EndpointScan struct {
	// Name of the endpoint inside the target ("postgres", "broker-1"),
	// Address host:port, Dialect "tls", "postgres", "kafka", "http".
	Name    string
	Address string
	Dialect string
	// Error: the endpoint could not be scanned at all (the rest is empty).
	Error    string
	Versions []VersionObservation
	Suites   []SuiteObservation
	// Groups accepted for key exchange (IANA names); GroupsIncomplete why
	// the enumeration could not finish.
	Groups           []string
	GroupsIncomplete string
	// ChainDER is the chain the server presented, leaf first.
	ChainDER [][]byte
	// TrustChecked: the chain was verified against the policy CA;
	// TrustError why it did not verify.
	TrustChecked bool
	TrustError   string
	// ClientCertRequested: the server sent a CertificateRequest.
	// NoClientCert: a session without a client certificate was accepted,
	// refused or inconclusive ("" not attempted).
	ClientCertRequested bool
	NoClientCert        string
	// Plaintext: a plaintext session on the port was accepted, refused or
	// inconclusive ("" not attempted).
	Plaintext string
	// Inconclusive observations of the scan.
	Inconclusive int
}

// VersionObservation is one protocol version's outcome.
type VersionObservation struct {
	// Version "TLSv1.2"; Outcome accepted, refused or inconclusive.
	Version          string
	Outcome          string
	Evidence         string
	SuitesIncomplete string
}

// SuiteObservation is one accepted cipher suite.
type SuiteObservation struct {
	Version string
	ID      uint16
	Name    string
}
