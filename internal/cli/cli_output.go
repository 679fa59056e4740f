package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// timeFormatCLI formats times the client computes, like the API's (RFC 3339, UTC, ms).
const timeFormatCLI = "2006-01-02T15:04:05.000Z07:00"

// table writes aligned columns: a header row and rows, or "key  value" pairs.
type table struct {
	tw *tabwriter.Writer
}

// table starts a table with the given header (none for a key-value table).
func (cl *cli) table(header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(cl.stdout, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

// pair adds a key and its value; empty values are left out.
func (t *table) pair(k, v string) {
	if v != "" {
		t.row(k, v)
	}
}

func (t *table) flush() error { return t.tw.Flush() }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// humanBytes formats n bytes with a binary unit: 512 B, 1.5 KiB, 118.3 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// isTerminal reports whether w is a character device (a terminal), where progress
// lines that rewrite themselves make sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress counts bytes written to it and shows them on a line that rewrites itself,
// at most every 200 ms; without a terminal it shows nothing.
type progress struct {
	w     io.Writer // nil: silent
	verb  string
	total int64 // -1 when unknown
	n     int64
	last  time.Time
}

func (cl *cli) progress(verb string, total int64) *progress {
	return &progress{w: cl.progressTo, verb: verb, total: total}
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if p.w != nil && time.Since(p.last) >= 200*time.Millisecond {
		p.last = time.Now()
		p.show()
	}
	return len(b), nil
}

func (p *progress) show() {
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r%s %s of %s (%d%%)  ", p.verb, humanBytes(p.n), humanBytes(p.total), p.n*100/p.total)
	} else {
		fmt.Fprintf(p.w, "\r%s %s  ", p.verb, humanBytes(p.n))
	}
}

// done shows the final count and ends the line.
func (p *progress) done() {
	if p.w == nil {
		return
	}
	p.show()
	fmt.Fprintln(p.w)
}
