package statuspage

import "testing"

// The HTTP-level tests live in package statuspage_test (they import api,
// which imports this package); they read the page with these.

// Element is one parsed element of the page.
type Element struct {
	Name  string
	Attrs map[string]string
}

func exported(els []element) []Element {
	out := make([]Element, len(els))
	for i, e := range els {
		out[i] = Element{Name: e.name, Attrs: e.attrs}
	}
	return out
}

// ParseStrict is parseStrict for package statuspage_test.
func ParseStrict(t *testing.T, page []byte) ([]Element, string) {
	els, text := parseStrict(t, page)
	return exported(els), text
}

// ShardElements is shardElements for package statuspage_test.
func ShardElements(els []Element) []Element {
	in := make([]element, len(els))
	for i, e := range els {
		in[i] = element{name: e.Name, attrs: e.Attrs}
	}
	return exported(shardElements(in))
}
