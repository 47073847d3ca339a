using System.Text;

namespace EioSharp.Processes;

/// <summary>How a child process ended.</summary>
/// <remarks>Eio: the constructors of <c>Process.exit_status</c>.</remarks>
public enum ProcessExitKind
{
    /// <summary>The process exited with a return code (Eio: <c>`Exited</c>).</summary>
    Exited,

    /// <summary>The process was killed by a signal (Eio: <c>`Signaled</c>).</summary>
    Signaled,
}

/// <summary>The exit status of a child process: an exit code, or the signal that killed it.</summary>
/// <param name="Kind">Whether <paramref name="Code"/> is an exit code or a signal number.</param>
/// <param name="Code">The exit code (0..255) or the signal number (Linux numbering, e.g. 9 for SIGKILL).</param>
/// <remarks>Eio: <c>Process.exit_status</c>; <see cref="ToString"/> is <c>Process.pp_status</c>.</remarks>
public readonly record struct ProcessStatus(ProcessExitKind Kind, int Code)
{
    /// <summary>True for <c>`Exited 0</c>, the only status <see cref="ChildProcess.AwaitSuccessAsync"/> accepts.</summary>
    public bool IsSuccess => Kind == ProcessExitKind.Exited && Code == 0;

    /// <summary>An exit with code <paramref name="code"/>.</summary>
    /// <param name="code">The exit code.</param>
    /// <returns>The status.</returns>
    public static ProcessStatus Exited(int code) => new(ProcessExitKind.Exited, code);

    /// <summary>A death by signal <paramref name="signal"/>.</summary>
    /// <param name="signal">The signal number.</param>
    /// <returns>The status.</returns>
    public static ProcessStatus Signaled(int signal) => new(ProcessExitKind.Signaled, signal);

    /// <summary>Formats as Eio's <c>pp_status</c>: <c>Exited (code 3)</c> or <c>Exited (signal SIGKILL)</c>.</summary>
    /// <returns>The text.</returns>
    public override string ToString() => Kind == ProcessExitKind.Exited
        ? $"Exited (code {Code})"
        : $"Exited (signal {UnixSignal.Name(Code)})";

    /// <summary>Decodes a <c>waitpid</c> status word.</summary>
    internal static ProcessStatus FromWaitStatus(int status)
    {
        int sig = status & 0x7f;
        return sig == 0 ? Exited((status >> 8) & 0xff) : Signaled(sig);
    }
}

/// <summary>Linux signal numbers for <see cref="ChildProcess.Signal"/> (Eio uses OCaml's <c>Sys.sigkill</c> etc.).</summary>
public static class UnixSignal
{
    /// <summary>SIGHUP.</summary>
    public const int Hangup = 1;

    /// <summary>SIGINT.</summary>
    public const int Interrupt = 2;

    /// <summary>SIGQUIT.</summary>
    public const int Quit = 3;

    /// <summary>SIGKILL (cannot be caught).</summary>
    public const int Kill = 9;

    /// <summary>SIGUSR1.</summary>
    public const int User1 = 10;

    /// <summary>SIGUSR2.</summary>
    public const int User2 = 12;

    /// <summary>SIGPIPE.</summary>
    public const int Pipe = 13;

    /// <summary>SIGTERM.</summary>
    public const int Terminate = 15;

    /// <summary>SIGCONT.</summary>
    public const int Continue = 18;

    /// <summary>SIGSTOP (cannot be caught).</summary>
    public const int Stop = 19;

    /// <summary>The conventional name of a signal (<c>SIGKILL</c>), or <c>SIG(n)</c> for others.</summary>
    /// <param name="signal">The number.</param>
    /// <returns>The name.</returns>
    public static string Name(int signal) => signal switch
    {
        Hangup => "SIGHUP",
        Interrupt => "SIGINT",
        Quit => "SIGQUIT",
        6 => "SIGABRT",
        Kill => "SIGKILL",
        User1 => "SIGUSR1",
        11 => "SIGSEGV",
        User2 => "SIGUSR2",
        Pipe => "SIGPIPE",
        14 => "SIGALRM",
        Terminate => "SIGTERM",
        Continue => "SIGCONT",
        Stop => "SIGSTOP",
        _ => $"SIG({signal})",
    };
}

/// <summary>A process could not be run, or ran and failed.</summary>
/// <remarks>Eio: <c>Eio.Io (Process.E error, context)</c>; the message ends with Eio's context
/// <c>running command: ARGS</c> when the command is known.</remarks>
public abstract class ProcessException : IOException
{
    private protected ProcessException(string message, IReadOnlyList<string>? arguments)
        : base(arguments is null ? message : $"{message}, running command: {ProcessManager.FormatArguments(arguments)}")
    {
        Arguments = arguments ?? [];
    }

    /// <summary>The command's argument vector (empty when not known).</summary>
    public IReadOnlyList<string> Arguments { get; }
}

/// <summary>The child exited with a status other than <c>Exited 0</c>.</summary>
/// <remarks>Eio: <c>Process.Child_error</c>.</remarks>
public sealed class ProcessExitException : ProcessException
{
    /// <summary>Creates the error.</summary>
    /// <param name="status">The status.</param>
    /// <param name="arguments">The command, or null.</param>
    public ProcessExitException(ProcessStatus status, IReadOnlyList<string>? arguments)
        : base($"Child_error {status}", arguments)
    {
        Status = status;
    }

    /// <summary>How the child ended.</summary>
    public ProcessStatus Status { get; }
}

/// <summary>The executable does not exist (or is not on <c>PATH</c>).</summary>
/// <remarks>Eio: <c>Process.Executable_not_found</c>.</remarks>
public sealed class ExecutableNotFoundException : ProcessException
{
    /// <summary>Creates the error.</summary>
    /// <param name="executable">The name that was looked up.</param>
    /// <param name="arguments">The command, or null.</param>
    public ExecutableNotFoundException(string executable, IReadOnlyList<string>? arguments)
        : base($"Executable_not_found {Quote(executable)}", arguments)
    {
        Executable = executable;
    }

    /// <summary>The executable's name or path.</summary>
    public string Executable { get; }

    private static string Quote(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
}

/// <summary>The arguments and environment are too large for the kernel (E2BIG).</summary>
/// <remarks>Eio: <c>Process.Argument_list_too_long</c>.</remarks>
public sealed class ArgumentListTooLongException : ProcessException
{
    /// <summary>Creates the error.</summary>
    /// <param name="arguments">The command, or null.</param>
    public ArgumentListTooLongException(IReadOnlyList<string>? arguments)
        : base("Argument_list_too_long", arguments)
    {
    }
}

/// <summary>Argument quoting for messages.</summary>
internal static class ArgumentFormat
{
    internal static string Format(IReadOnlyList<string> args)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < args.Count; i++)
        {
            if (i > 0)
            {
                sb.Append(' ');
            }

            string a = args[i];
            bool plain = a.Length > 0 && a.All(ch => ch > ' ' && ch < 127 && ch != '"' && ch != '\'' && ch != '\\');
            sb.Append(plain ? a : "\"" + a.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n") + "\"");
        }

        return sb.ToString();
    }
}
