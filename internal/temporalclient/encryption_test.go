package temporalclient

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/onboarding-service/onboarding/internal/codec"
	"github.com/onboarding-service/onboarding/internal/config"
)

func TestWithPayloadEncryption(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	plain, err := Options(config.Config{}, logger, WithPayloadEncryption(config.Config{}))
	if err != nil || plain.DataConverter != nil || plain.FailureConverter != nil {
		t.Fatalf("without a key: %+v %v", plain, err)
	}
	var cfg config.Config
	cfg.PayloadKey = &codec.Key{ID: "k1"}
	o, err := Options(cfg, logger, WithPayloadEncryption(cfg))
	if err != nil || o.DataConverter == nil || o.FailureConverter == nil {
		t.Fatalf("with a key: %+v %v", o, err)
	}
	p, err := o.DataConverter.ToPayload("jane@acme.test")
	if err != nil || !codec.Encrypted(p) || string(p.Metadata[codec.MetadataKeyID]) != "k1" {
		t.Fatalf("payload %v %v", p, err)
	}
	f := o.FailureConverter.ErrorToFailure(errString("invalid recipient jane@acme.test"))
	if f.GetMessage() == "invalid recipient jane@acme.test" || f.GetEncodedAttributes() == nil || !codec.Encrypted(f.GetEncodedAttributes()) {
		t.Fatalf("failure %v keeps its message in clear", f)
	}
	if back := o.FailureConverter.FailureToError(f); !strings.HasPrefix(back.Error(), "invalid recipient jane@acme.test") {
		t.Fatalf("failure decodes to %q", back.Error())
	}
}

type errString string

func (e errString) Error() string { return string(e) }
