package fetch

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkMarkdown converts a page of about size bytes (articles of headings,
// paragraphs with links and emphasis, lists and a table), the CPU and memory one
// format "markdown" fetch costs beyond the network.
func BenchmarkMarkdown(b *testing.B) {
	base, err := url.Parse("https://example.test/articles/")
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{64 << 10, 1 << 20, 5 << 20} {
		var sb strings.Builder
		sb.WriteString("<!doctype html><html><head><title>Bench</title><style>p{color:red}</style></head><body>")
		for i := 0; sb.Len() < size; i++ {
			fmt.Fprintf(&sb, `<h2>Section %d</h2><p>Some <b>bold</b> and <i>italic</i> text with <a href="/p/%d">a link</a> and more words to read.</p><ul><li>one</li><li>two %d</li></ul><table><tr><td>a</td><td>%d</td></tr></table>`, i, i, i, i)
		}
		sb.WriteString("</body></html>")
		c := decodeContent("text/html; charset=utf-8", []byte(sb.String()))
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				if _, err := c.markdown(base); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
