package sync_test

import (
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

func TestMergeProblems(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
	signIn := func(at time.Time, trace string) psync.Problem {
		return psync.Problem{At: at, Fix: "teams.client_secret is wrong", What: "graph getUser: sign-in of the app failed: AADSTS7000215: Invalid client secret provided.\r\n" +
			"Trace ID: " + trace + "\r\nCorrelation ID: " + trace + "\r\nTimestamp: " + at.Format("2006-01-02 15:04:05Z")}
	}
	in := []psync.Problem{ // newest first, as adapters keep them
		signIn(t0.Add(4*time.Second), "954bab4e-2947-4819-b3d8-abaa14b10585"),
		{At: t0.Add(3 * time.Second), What: "graph getUser u1: HTTP 404", Fix: "check the UPN"},
		signIn(t0.Add(2*time.Second), "4632db0c-344b-4e68-bf21-ca9e60be8dea"),
		{At: t0.Add(time.Second), What: "graph getUser u2: HTTP 404"},
		signIn(t0, "0b0b0b0b-344b-4e68-bf21-ca9e60be8dea"),
	}
	got := psync.MergeProblems(in)
	if len(got) != 3 {
		t.Fatalf("%d problems, want 3 (the sign-in once, each user's 404): %+v", len(got), got)
	}
	if got[0].Count != 3 || !got[0].At.Equal(t0.Add(4*time.Second)) || got[0].What != in[0].What || got[0].Fix == "" {
		t.Errorf("the sign-in error: %+v; want the newest, three times, with its fix", got[0])
	}
	if got[1].What != in[1].What || got[2].What != in[3].What || got[1].Count != 1 || got[2].Count != 1 {
		t.Errorf("errors of different users must stay apart: %+v", got[1:])
	}
	again := psync.MergeProblems(got)
	if len(again) != 3 || again[0].Count != 3 {
		t.Errorf("merging twice changed the counts: %+v", again)
	}
}

func TestSameProblem(t *testing.T) {
	cause := `createsession: Post "http://127.0.0.1:34857/ws/client/createsession": dial tcp 127.0.0.1:34857: connect: connection refused`
	for _, c := range []struct {
		detail, what string
		same         bool
	}{
		{"cannot connect to the UCServer: " + cause + "; retrying in 16.6s", "cannot connect: " + cause, true},
		{"AADSTS7000215: Invalid client secret provided.", "AADSTS7000215: Invalid client secret provided.", true},
		{"websocket closed (1006); reconnecting in 4s", "websocket: close 1006 (abnormal closure)", false},
		{"unhealthy", "x: y", false},
	} {
		if got := psync.SameProblem(c.detail, c.what); got != c.same {
			t.Errorf("SameProblem(%q, %q) = %v", c.detail, c.what, got)
		}
	}
}
