package sdk

import (
	"context"
	"strings"
	"testing"
)

func TestDecodeSpecStrict(t *testing.T) {
	tg := NewTarget("t", nil, []byte(`{"a":1,"b":2}`), map[string][]byte{"password": []byte("pw")})
	var v struct{ A int }
	if err := tg.DecodeSpec(&v); err == nil {
		t.Errorf("unknown field accepted")
	}
	if pw, ok := tg.Secret("password"); !ok || pw != "pw" || strings.Join(tg.SecretNames(), ",") != "password" {
		t.Errorf("secret")
	}
}

func TestCapabilitiesFromInterfaces(t *testing.T) {
	caps := CapabilitiesOf(onlyVerify{})
	if len(caps) != 1 || caps[0] != CapVerify {
		t.Errorf("caps %v", caps)
	}
}

type onlyVerify struct{}

func (onlyVerify) Metadata(_ ctxT, _ MetadataRequest, _ *MetadataResponse) {}
func (onlyVerify) Schema(_ ctxT, _ SchemaRequest, _ *SchemaResponse)       {}
func (onlyVerify) Verify(_ ctxT, _ VerifyRequest, _ *VerifyResponse)       {}

type ctxT = context.Context
