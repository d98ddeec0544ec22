package core

import (
	"sync"
	"unicode/utf8"
)

// Text the validator refuses: strings must be valid UTF-8, which excludes
// the UTF-16 surrogates U+D800–U+DFFF. The edge's parser hands the
// validator an unpaired surrogate escape ("\ud800") as the surrogate's
// three-byte encoded form (ED A0 80), so that it is refused here, with the
// escape named, like the same bytes sent raw; a valid pair
// ("\ud83d\ude00") arrives as the character it encodes.

// msgSurrogatePrefix starts the reason of an encoded surrogate; the
// surrogate's \u escape, in lower case, ends it.
const msgSurrogatePrefix = `invalid text: unpaired UTF-16 surrogate \u`

// InvalidText returns why s, which is not valid UTF-8, is refused: the
// first surrogate it encodes, if that is where s first goes wrong
// ("invalid text: unpaired UTF-16 surrogate \ud800"), else "invalid text:
// not valid UTF-8". The result is a static string: rejecting allocates
// nothing (the first surrogate ever named builds the table of their
// messages, once).
func InvalidText(s []byte) string {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r != utf8.RuneError || n != 1 {
			i += n
			continue
		}
		if i+2 < len(s) && s[i] == 0xED && s[i+1]&0xE0 == 0xA0 && s[i+2]&0xC0 == 0x80 {
			return surrogateMsg(0xD800 | int(s[i+1]&0x1F)<<6 | int(s[i+2]&0x3F))
		}
		return msgUTF8
	}
	return msgUTF8
}

var surrogateMsgs struct {
	once sync.Once
	msgs [0x800]string
}

// surrogateMsg returns the reason naming surrogate u (0xD800–0xDFFF).
func surrogateMsg(u int) string {
	surrogateMsgs.once.Do(func() {
		const n = len(msgSurrogatePrefix) + 4
		b := make([]byte, 0, len(surrogateMsgs.msgs)*n)
		for i := range surrogateMsgs.msgs {
			c := 0xD800 + i
			b = append(b, msgSurrogatePrefix...)
			b = append(b, hexDigits[c>>12], hexDigits[c>>8&0xF], hexDigits[c>>4&0xF], hexDigits[c&0xF])
		}
		all := string(b)
		for i := range surrogateMsgs.msgs {
			surrogateMsgs.msgs[i] = all[i*n : (i+1)*n]
		}
	})
	return surrogateMsgs.msgs[u-0xD800]
}
