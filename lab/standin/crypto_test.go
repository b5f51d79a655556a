package standin

import (
	"errors"
	"strings"
	"testing"
)

func TestEncryptRoundTrip(t *testing.T) {
	tests := []struct {
		name, plain string
	}{
		{"empty", ""},
		{"short", "cattle"},
		{"block sized", strings.Repeat("x", 16)},
		{"special", `p'a"ss $w0rd\`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := mustKey(t)
			enc, err := Encrypt(key, tt.plain)
			if err != nil {
				t.Fatal(err)
			}
			iv, ct, ok := strings.Cut(enc, ":")
			if !ok || len(iv) != 32 || len(ct)%32 != 0 || len(ct) == 0 {
				t.Fatalf("Encrypt = %q, want hexIV:hexCiphertext", enc)
			}
			got, err := Decrypt(key, enc)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.plain {
				t.Errorf("Decrypt = %q, want %q", got, tt.plain)
			}
			back, err := DecodeKey(EncodeKey(key) + "\n")
			if err != nil || string(back) != string(key) {
				t.Errorf("DecodeKey(EncodeKey) = %x, %v", back, err)
			}
		})
	}
}

func TestDecryptFailures(t *testing.T) {
	key := mustKey(t)
	enc, err := Encrypt(key, "secret-password")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		key   []byte
		value string
	}{
		{"no colon", key, "abcdef"},
		{"bad iv", key, "zz:" + strings.Repeat("00", 16)},
		{"short ciphertext", key, strings.Repeat("00", 16) + ":00"},
	}
	// A wrong key yields bad padding with probability ~1-1/256 per key;
	// try a few keys so the test cannot flake.
	for i := 0; i < 4; i++ {
		tests = append(tests, struct {
			name  string
			key   []byte
			value string
		}{"wrong key", mustKey(t), enc})
	}
	wrongKeyFailures := 0
	for _, tt := range tests {
		_, err := Decrypt(tt.key, tt.value)
		if tt.name == "wrong key" {
			if errors.Is(err, ErrDecrypt) {
				wrongKeyFailures++
			}
			continue
		}
		if !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: Decrypt error = %v, want ErrDecrypt", tt.name, err)
		}
	}
	if wrongKeyFailures == 0 {
		t.Error("Decrypt with wrong keys never reported ErrDecrypt")
	}
	if _, err := DecodeKey("c2hvcnQ="); !errors.Is(err, ErrDecrypt) {
		t.Errorf("DecodeKey(short) = %v, want ErrDecrypt", err)
	}
}

func TestNewKeyIsRandom(t *testing.T) {
	a, b := mustKey(t), mustKey(t)
	if len(a) != KeySize || string(a) == string(b) {
		t.Errorf("NewKey gave %d bytes, equal=%t", len(a), string(a) == string(b))
	}
}

func mustKey(t *testing.T) []byte {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
