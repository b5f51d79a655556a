// Package transporttest is a test double for transport.Runner, in the
// manner of k0sproject/rig's: a Runner records every command it is given,
// in order, and answers from expectations the test set beforehand.
//
//	r := transporttest.New("rs1")
//	r.On(transporttest.Line("docker pull 'rancher/server:v1.0.1'")).Once()
//	r.On(transporttest.StatOf("/etc/haproxy/haproxy.cfg")).Absent()
//	r.On(transporttest.WriteOf("/etc/haproxy/haproxy.cfg"))
//	... run the code under test ...
//	r.AssertExpectationsMet(t)
//	w, _ := r.Written("/etc/haproxy/haproxy.cfg") // w.Data, w.Mode
//
// Answers look like a *transport.Client's: a non-zero exit status returns
// the Result together with a *transport.ProcessError naming the host and
// the (redacted) command, an expectation that hangs ends in a
// *transport.TimeoutError after the command's Timeout, and a cancelled
// context gives an error wrapping ctx.Err(). A command no expectation
// matches fails with an *UnexpectedError, and AssertExpectationsMet
// reports it: the double never answers by guessing.
//
// transport.ReadFile, StatFile and WriteFile are shell lines over Run;
// ReadOf, StatOf and WriteOf match those lines for one path, Expectation.Stat
// and Absent answer them in the format they parse, and Writes and Written
// take a WriteFile line apart again (the path, the data sent on stdin, the
// mode the file gets).
//
// Like a *transport.Client, a Runner opens connections from its host
// (transport.DialerOf finds it). Every dial is refused until OnDial says
// how to answer, as by an sshd that forwards nothing, so code that falls
// back when it cannot dial (dockerapi's docker CLI) does.
//
// A Fleet is a set of Runners by host name, with a Connect function of the
// shape resources.Options.Connect takes; a host marked Unreachable fails
// to connect with a *transport.ConnectError.
//
// Everything here is safe for concurrent use.
package transporttest
