package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/writhq/writ/internal/store/storetest"
)

// BenchmarkSync measures the disk's floor under every durable commit: one
// 4 KiB page written and synced, either over a page of a file that stays
// the same size (as SQLite's write-ahead log is, once it starts over) or
// at the end of one that grows. A commit of the ledger costs this plus
// SQLite's own work; an MCP call through the gateway costs two of them.
func BenchmarkSync(b *testing.B) {
	page := make([]byte, 4096)
	for _, mode := range []string{"overwrite", "grow"} {
		b.Run(mode, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "sync"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			const slots = 256
			if mode == "overwrite" {
				if _, err := f.WriteAt(make([]byte, slots*len(page)), 0); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				off := int64(i) * int64(len(page))
				if mode == "overwrite" {
					off = int64(i%slots) * int64(len(page))
				}
				start := time.Now()
				if _, err := f.WriteAt(page, off); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			storetest.ReportPercentiles(b, lat)
		})
	}
}
