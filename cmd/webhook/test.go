package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/poddns/poddns/pkg/policysuite"
)

// errSuiteFailed is returned when a suite ran and some pod did not get what
// it expected; the report has said which.
var errSuiteFailed = errors.New("test suite failed")

func newTestCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "test SUITE_DIR|SUITE_FILE...",
		Short: "Run policy test suites (poddns-test.yaml) and diff the results",
		Long: `test runs policy test suites, like kyverno test: each suite is a
poddns-test.yaml file (or a directory holding one) naming policy files,
manifests with pods and their Namespace documents, and per pod the expected
dnsPolicy, dnsConfig, resolv.conf, applied, skipped and audit policies and
admission warnings. Every pod goes through the policies exactly as the webhook
would admit it, offline; a given expectation is compared exactly.

Exit status: 0 when every expectation holds, 1 when some does not (a diff
says what differs), 2 when a suite cannot run (unreadable or malformed
suite, policies or manifests).`,
		Example: `  webhook test testdata/policies/suite
  webhook test policies/tests/*/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			failed := false
			for _, path := range args {
				res, err := policysuite.Run(path)
				if err != nil {
					return fmt.Errorf("test: %w", err)
				}
				if err := policysuite.Write(s.out, res); err != nil {
					return fmt.Errorf("test: %w", err)
				}
				if res.Failed() > 0 {
					failed = true
				}
			}
			if failed {
				return errSuiteFailed
			}
			return nil
		},
	}
}
