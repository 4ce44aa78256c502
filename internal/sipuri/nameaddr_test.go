package sipuri

import "testing"

func TestParseNameAddrs(t *testing.T) {
	got, err := ParseNameAddrs(`"Bob, the \"B\"" <sip:bob@h;lr>;expires=60;+sip.instance="<urn:x>", sip:c@h;q=0.5 , *`)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d elements: %+v", len(got), got)
	}
	if got[0].URI != "sip:bob@h;lr" {
		t.Errorf("URI = %q", got[0].URI)
	}
	if p, ok := got[0].Param("+sip.instance"); !ok || p.Value != "<urn:x>" || !p.Quoted {
		t.Errorf("+sip.instance = %+v, %v", p, ok)
	}
	if p, ok := got[0].Param("expires"); !ok || p.Value != "60" || !p.HasValue {
		t.Errorf("expires = %+v, %v", p, ok)
	}
	if got[1].URI != "sip:c@h" {
		t.Errorf("addr-spec URI = %q: its ;q is a header parameter", got[1].URI)
	}
	if !got[2].Wildcard {
		t.Errorf("* not a wildcard")
	}
	for _, bad := range []string{``, `<sip:a@h`, `"open <sip:a@h>`, `<sip:a@h>,`, `<sip:a@h>;`, `<sip:a@h>;x="`, `<<sip:a@h>>`} {
		if _, err := ParseNameAddrs(bad); err == nil {
			t.Errorf("ParseNameAddrs(%q): want an error", bad)
		}
	}
}

func TestQuotedString(t *testing.T) {
	v, n, err := QuotedString(`"a\"b" rest`)
	if err != nil || v != `a"b` || n != 6 {
		t.Errorf("QuotedString = %q, %d, %v", v, n, err)
	}
	if v, _, err := QuotedString(`"` + QuoteEscape(`a\"b`) + `"`); err != nil || v != `a\"b` {
		t.Errorf("QuoteEscape does not round-trip: %q, %v", v, err)
	}
	if _, _, err := QuotedString("\"a\r\nb\""); err == nil {
		t.Errorf("line break accepted")
	}
}

// FuzzNameAddrs checks that the list grammar never panics and that every
// element it accepts has a URI free of what would end it early.
func FuzzNameAddrs(f *testing.F) {
	for _, s := range []string{`<sip:a@h>;q=1`, `"x" <sip:a@h>, sip:b@h;expires=5`, `*`, `a <sip:b@h>;p="q,r"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		elems, err := ParseNameAddrs(v)
		if err != nil {
			return
		}
		for _, e := range elems {
			if !e.Wildcard && e.URI == "" {
				t.Fatalf("%q: element without a URI", v)
			}
		}
	})
}
