package emailhash

import "testing"

func TestHash(t *testing.T) {
	k := []byte("key-one")
	a := Hash(k, "Jane.Doe@Example.com")
	if a != Hash(k, "  jane.doe@example.com ") {
		t.Fatal("case or spaces change the hash: support could not find the invitation")
	}
	if len(a) != 32 {
		t.Fatalf("hash %q is not 128 bits of hex", a)
	}
	if a == Hash([]byte("key-two"), "jane.doe@example.com") || a == Hash(k, "john@example.com") {
		t.Fatal("the hash does not depend on the key and the address")
	}
	if string(DeriveKey([]byte("s1"))) == string(DeriveKey([]byte("s2"))) {
		t.Fatal("derived keys collide")
	}
}
