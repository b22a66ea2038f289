// Package codec encrypts what the service writes to Temporal: a converter.PayloadCodec that seals
// every payload with AES-256-GCM under PAYLOAD_ENCRYPTION_KEY, naming the key in the payload's
// metadata so keys can rotate (old payloads still open with PAYLOAD_ENCRYPTION_KEYS_PREVIOUS).
// Temporal, its database and its UI then see ciphertext; the API's /codec endpoints decode for
// authorised support staff.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Metadata of an encrypted payload. The names follow Temporal's encryption sample, so the
// usual tooling recognises them.
const (
	// Encoding marks a payload this codec sealed.
	Encoding = "binary/encrypted"
	// MetadataKeyID names the key that sealed the payload.
	MetadataKeyID = "encryption-key-id"
	// MetadataCipher names the cipher.
	MetadataCipher = "encryption-cipher"
	// Cipher is the only cipher used.
	Cipher = "AES256-GCM"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

// maxKeyIDLen bounds key ids, which travel in every payload's metadata.
const maxKeyIDLen = 64

// ErrUnknownKey means a payload names a key this codec does not hold.
var ErrUnknownKey = errors.New("payload encrypted with an unknown key")

// ErrCorrupt means a payload could not be opened: truncated, altered, or sealed under another
// key with the same id.
var ErrCorrupt = errors.New("encrypted payload cannot be opened")

// Key is one payload key and the id written next to what it seals.
type Key struct {
	ID     string
	Secret [KeySize]byte
}

// Codec seals with the current key and opens with the current and every previous one.
type Codec struct {
	currentID string
	aeads     map[string]cipher.AEAD
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New returns a codec. Keys must have distinct, valid ids (CheckKeyID); config checks them.
func New(current Key, previous ...Key) *Codec {
	c := &Codec{currentID: current.ID, aeads: make(map[string]cipher.AEAD, 1+len(previous))}
	for _, k := range append([]Key{current}, previous...) {
		if _, dup := c.aeads[k.ID]; dup {
			continue // the first (current) wins
		}
		block, err := aes.NewCipher(k.Secret[:])
		if err != nil {
			panic(err) // cannot happen: the key is 32 bytes
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			panic(err) // cannot happen: AES has a 16-byte block
		}
		c.aeads[k.ID] = aead
	}
	return c
}

// CurrentKeyID is the id of the key that seals.
func (c *Codec) CurrentKeyID() string { return c.currentID }

// Encode seals every payload under the current key. The whole payload (metadata and data) is
// sealed, so nothing of the original, not even its encoding, shows.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.aeads[c.currentID]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("payload codec: %w", err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return payloads, fmt.Errorf("payload codec: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(Encoding),
				MetadataKeyID:              []byte(c.currentID),
				MetadataCipher:             []byte(Cipher),
			},
			Data: aead.Seal(nonce, nonce, plain, additionalData(c.currentID)),
		}
	}
	return out, nil
}

// Decode opens the payloads this codec sealed and passes any other through unchanged (what was
// written before encryption was switched on stays readable).
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if !Encrypted(p) {
			out[i] = p
			continue
		}
		opened, err := c.open(p)
		if err != nil {
			return payloads, err
		}
		out[i] = opened
	}
	return out, nil
}

func (c *Codec) open(p *commonpb.Payload) (*commonpb.Payload, error) {
	id := string(p.GetMetadata()[MetadataKeyID])
	if cph := p.GetMetadata()[MetadataCipher]; cph != nil && string(cph) != Cipher {
		return nil, fmt.Errorf("%w: cipher %q", ErrCorrupt, truncate(string(cph)))
	}
	aead, ok := c.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w (key id %q)", ErrUnknownKey, truncate(id))
	}
	data := p.GetData()
	if len(data) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrCorrupt
	}
	plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], additionalData(id))
	if err != nil {
		return nil, ErrCorrupt
	}
	var orig commonpb.Payload
	if err := proto.Unmarshal(plain, &orig); err != nil {
		return nil, ErrCorrupt
	}
	return &orig, nil
}

// Encrypted reports whether p was sealed by this codec (by its encoding metadata).
func Encrypted(p *commonpb.Payload) bool {
	return string(p.GetMetadata()[converter.MetadataEncoding]) == Encoding
}

// additionalData binds the ciphertext to its key id, so the metadata cannot be swapped.
func additionalData(keyID string) []byte { return []byte("onboarding-payload-v1\x00" + keyID) }

func truncate(s string) string {
	if len(s) > maxKeyIDLen {
		return s[:maxKeyIDLen] + "…"
	}
	return s
}

// DataConverter is Temporal's default data converter with payloads sealed by c.
func DataConverter(c *Codec) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter moves failure messages and stack traces into an encoded (so sealed) payload:
// an error message can hold an address ("invalid recipient jane@..."), and Temporal stores
// failures outside the payloads unless told otherwise.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})
}

// ParseKey decodes a key given in base64 (standard or URL alphabet, padded or not); it must
// be exactly 32 bytes.
func ParseKey(s string) ([KeySize]byte, error) {
	var key [KeySize]byte
	s = strings.TrimSpace(s)
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return key, errors.New("is not base64 (make one with: openssl rand -base64 32)")
	}
	if len(raw) != KeySize {
		return key, fmt.Errorf("must decode to %d bytes, not %d (make one with: openssl rand -base64 32)", KeySize, len(raw))
	}
	copy(key[:], raw)
	return key, nil
}

// DeriveKeyID names a key by a fingerprint of it, for keys given without an id. Eight bytes of
// a SHA-256 tell nothing useful about a 256-bit random key.
func DeriveKeyID(secret [KeySize]byte) string {
	sum := sha256.Sum256(append([]byte("onboarding-payload-key-id\x00"), secret[:]...))
	return "k-" + hex.EncodeToString(sum[:8])
}

// CheckKeyID says what is wrong with a key id, or "" when it is acceptable: 1 to 64
// characters of letters, digits, '-', '_' and '.'.
func CheckKeyID(id string) string {
	if id == "" || len(id) > maxKeyIDLen {
		return fmt.Sprintf("must have 1 to %d characters", maxKeyIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return "may hold only letters, digits, '-', '_' and '.'"
		}
	}
	return ""
}
