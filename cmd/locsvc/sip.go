package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/locsvc/locsvc/sipfront"
)

// passwdCmd prints credentials-file lines (MD5 and SHA-256 HA1) for a user,
// reading the password from standard input, so no password ever lands in
// the shell history or the process list.
func passwdCmd(args []string) error {
	if len(args) != 2 {
		return usageError{errors.New("passwd: need USER REALM (the password is read from standard input)")}
	}
	user, realm := args[0], args[1]
	if strings.ContainsAny(user+realm, ":\n") || user == "" || realm == "" {
		return usageError{errors.New("passwd: USER and REALM must be non-empty and contain no ':'")}
	}
	fmt.Fprintf(os.Stderr, "password for %s@%s: ", user, realm)
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("passwd: reading the password: %w", err)
	}
	fmt.Fprintln(os.Stderr)
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return usageError{errors.New("passwd: empty password")}
	}
	for _, alg := range []sipfront.Algorithm{sipfront.SHA256, sipfront.MD5} {
		l, err := sipfront.CredentialLine(user, realm, password, alg)
		if err != nil {
			return err
		}
		fmt.Println(l)
	}
	return nil
}
