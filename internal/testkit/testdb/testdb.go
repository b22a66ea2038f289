// Package testdb removes the Postgres databases that tests create, each on a server shared with
// other suites. The service never drops a database, so this lives in the test kit, not beside
// the migrations.
package testdb

import (
	"context"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Drop removes the database named in databaseURL, forcing its remaining connections closed; a
// database that does not exist is no error.
func Drop(ctx context.Context, databaseURL string) error {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "drop database if exists "+pgx.Identifier{name}.Sanitize()+" with (force)")
	return err
}
