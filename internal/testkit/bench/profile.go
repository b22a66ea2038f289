package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// profiler takes the -profile captures: CPU profiles of the API and the worker through their
// PPROF_ADDR endpoints while the 16-caller create runs, heap profiles after each phase, and
// Postgres' top statements over the same create when pg_stat_statements is loaded.
type profiler struct {
	dir     string
	seconds int
	targets map[string]string // process name -> pprof host:port
	dbURL   string
	say     func(string, ...any)
	// Files lists what was written, Notes what could not be.
	Files []string
	Notes []string
	// statements is false once pg_stat_statements proved unusable.
	statements bool
}

func newProfiler(dir string, seconds int, targets map[string]string, dbURL string, say func(string, ...any)) (*profiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &profiler{dir: dir, seconds: seconds, targets: targets, dbURL: dbURL, say: say, statements: true}, nil
}

// cpu starts a CPU profile of every target and returns a channel closed once all are saved.
func (p *profiler) cpu(ctx context.Context, label string) <-chan struct{} {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	for name, addr := range p.targets {
		wg.Go(func() {
			path := filepath.Join(p.dir, fmt.Sprintf("%s-cpu-%s.pprof", name, label))
			err := p.fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, p.seconds), path, time.Duration(p.seconds+30)*time.Second)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				p.Notes = append(p.Notes, fmt.Sprintf("CPU profile of the %s: %v", name, err))
				return
			}
			p.Files = append(p.Files, path)
		})
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// heap saves a heap profile of every target.
func (p *profiler) heap(ctx context.Context, label string) {
	for name, addr := range p.targets {
		path := filepath.Join(p.dir, fmt.Sprintf("%s-heap-%s.pprof", name, label))
		if err := p.fetch(ctx, "http://"+addr+"/debug/pprof/heap", path, 30*time.Second); err != nil {
			p.Notes = append(p.Notes, fmt.Sprintf("heap profile of the %s: %v", name, err))
			continue
		}
		p.Files = append(p.Files, path)
	}
}

func (p *profiler) fetch(ctx context.Context, u, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("%s answered %s: %s", u, res.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// resetStatements enables pg_stat_statements in the bench database and clears its counts for
// that database only. The extension's view works only when the server preloads the library
// (shared_preload_libraries, a restart): the bench never changes the server's configuration,
// so without it the statements are skipped with a note saying how to enable them.
func (p *profiler) resetStatements(ctx context.Context) {
	if !p.statements {
		return
	}
	err := p.withDB(ctx, func(conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, "create extension if not exists pg_stat_statements"); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, "select pg_stat_statements_reset(0, (select oid from pg_database where datname = current_database()), 0)")
		return err
	})
	if err != nil {
		p.statements = false
		p.Notes = append(p.Notes, fmt.Sprintf("pg_stat_statements skipped: %v. It needs "+
			"shared_preload_libraries = 'pg_stat_statements' in the server's postgresql.conf and a "+
			"restart, which the bench does not do to a shared server", firstLine(err.Error())))
	}
}

// statementsTop writes the top statements by total time since resetStatements.
func (p *profiler) statementsTop(ctx context.Context, label string) {
	if !p.statements {
		return
	}
	var b strings.Builder
	err := p.withDB(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `select calls, total_exec_time, mean_exec_time, rows, regexp_replace(query, '\s+', ' ', 'g')
			from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())
			order by total_exec_time desc limit 25`)
		if err != nil {
			return err
		}
		defer rows.Close()
		fmt.Fprintf(&b, "%8s %12s %10s %8s  %s\n", "calls", "total ms", "mean ms", "rows", "query")
		for rows.Next() {
			var calls, nrows int64
			var total, mean float64
			var q string
			if err := rows.Scan(&calls, &total, &mean, &nrows, &q); err != nil {
				return err
			}
			fmt.Fprintf(&b, "%8d %12.1f %10.3f %8d  %s\n", calls, total, mean, nrows, q)
		}
		return rows.Err()
	})
	if err != nil {
		p.Notes = append(p.Notes, fmt.Sprintf("pg_stat_statements: %v", firstLine(err.Error())))
		return
	}
	path := filepath.Join(p.dir, "pg_stat_statements-"+label+".txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		p.Notes = append(p.Notes, err.Error())
		return
	}
	p.Files = append(p.Files, path)
}

func (p *profiler) withDB(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, p.dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return fn(conn)
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
