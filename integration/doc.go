// Package integration tests locsvc against real processes: the locsvc
// binary, memcached, sipp, Kamailio, and headless Chromium running JsSIP
// as a browser phone (browser.go, webrtc/), all on loopback with ports
// picked at run time. Every process a test starts is stopped by PID when
// the test ends. A missing program (or JsSIP not installed) is a test
// failure, not a skip: CI installs them (.ci/run).
package integration
