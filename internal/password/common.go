package password

import (
	_ "embed"
	"strings"
	"unicode"
)

// The most common breached passwords, shipped in the binary and refused by Check: an attacker
// tries them first, against every account at once.
//
//go:embed common-passwords.txt
var commonFile string

var common = func() map[string]struct{} {
	m := make(map[string]struct{}, 512)
	for line := range strings.SplitSeq(commonFile, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			m[strings.ToLower(line)] = struct{}{}
		}
	}
	return m
}()

// leet undoes the character swaps people make to pass a policy ("P@ssw0rd").
var leet = strings.NewReplacer("@", "a", "4", "a", "0", "o", "3", "e", "$", "s", "5", "s", "1", "i", "!", "i", "7", "t", "+", "t")

// Common reports whether pw is one of the common passwords, or one of them dressed up:
// in any case, with digits and symbols before or after it ("Summer2024!"), or with the usual
// swaps ("P@ssw0rd").
func Common(pw string) bool {
	lower := strings.ToLower(pw)
	notAlnum := func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }
	notLetter := func(r rune) bool { return !unicode.IsLetter(r) }
	for _, c := range []string{
		lower,
		strings.TrimFunc(lower, notAlnum),       // "trustno1!"
		strings.TrimRightFunc(lower, notLetter), // "p@ssw0rd2024!", "4dmin123"
		strings.TrimFunc(lower, notLetter),      // "2024summer!"
	} {
		if len(c) < 4 {
			continue
		}
		if _, ok := common[c]; ok {
			return true
		}
		if _, ok := common[leet.Replace(c)]; ok {
			return true
		}
	}
	return false
}
