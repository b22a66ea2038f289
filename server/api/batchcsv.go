package api

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// A bulk batch as CSV: a header row naming the columns (any order), then one invitation per
// row. Each row becomes the JSON create body it stands for and is judged as one, so its errors
// name the same fields. Empty cells are absent fields.

// csvColumns are the columns a batch's CSV may have, and how each cell becomes a JSON value.
var csvColumns = map[string]func(string) any{
	"email":           csvString,
	"first_name":      csvString,
	"last_name":       csvString,
	"phone":           csvString,
	"user_id":         csvString,
	"role":            csvString,
	"subscription_id": csvString,
	"group_ids":       csvList,
	"message":         csvString,
	"redirect_url":    csvString,
	"expires_in":      csvInteger,
	"send_email":      csvBool,
}

func csvString(s string) any { return s }

// csvList splits a ;-separated list ("id1;id2").
func csvList(s string) any {
	items := []string{}
	for _, p := range strings.Split(s, ";") {
		if p = strings.TrimSpace(p); p != "" {
			items = append(items, p)
		}
	}
	return items
}

// csvInteger is an integer cell as a number; anything else stays text, which the create's
// decoder then refuses by name ("must be an integer").
func csvInteger(s string) any {
	if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
		return n
	}
	return s
}

// csvBool reads true/false (also yes/no, 1/0); anything else stays text, refused by name.
func csvBool(s string) any {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "1":
		return true
	case "false", "no", "0":
		return false
	}
	return s
}

// csvRows turns a CSV batch into create bodies, one per row.
func csvRows(data []byte) ([]json.RawMessage, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // the byte-order mark spreadsheets write
	r := csv.NewReader(bytes.NewReader(data))
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, problem.InvalidField(problem.BodyField, "the CSV needs a header row (email,first_name,last_name,role,subscription_id,group_ids) and at least one row")
	}
	if err != nil {
		return nil, csvProblem(err)
	}
	seen := map[string]bool{}
	for i, name := range header {
		name = strings.ToLower(strings.TrimSpace(name))
		header[i] = name
		if _, ok := csvColumns[name]; !ok {
			return nil, problem.InvalidField(fmt.Sprintf("header[%d]", i), fmt.Sprintf("unknown column %q; the columns are %s", name, csvColumnList()))
		}
		if seen[name] {
			return nil, problem.InvalidField(fmt.Sprintf("header[%d]", i), fmt.Sprintf("column %q is given more than once", name))
		}
		seen[name] = true
	}
	var rows []json.RawMessage
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvProblem(err)
		}
		body := map[string]any{}
		for i, cell := range rec {
			if strings.TrimSpace(cell) != "" {
				body[header[i]] = csvColumns[header[i]](cell)
			}
		}
		raw, _ := json.Marshal(body) // strings, numbers, booleans and lists of strings: cannot fail
		rows = append(rows, raw)
		if len(rows) > contract.MaxBatchItems {
			break // readBatchRows refuses the batch as too long
		}
	}
	return rows, nil
}

// csvProblem names where the CSV is malformed.
func csvProblem(err error) *problem.Problem {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return problem.InvalidField(problem.BodyField, fmt.Sprintf("malformed CSV at line %d: %v", pe.Line, pe.Err))
	}
	return problem.InvalidField(problem.BodyField, "malformed CSV")
}

func csvColumnList() string {
	return "email, first_name, last_name, phone, user_id, role, subscription_id, group_ids (;-separated), message, redirect_url, expires_in, send_email"
}
