using System.Text;
using EioSharp.Fs;

namespace EioSharp.Kv;

/// <summary>The server's log (Redis's <c>logfile</c>): lines in Redis's format (<c>pid:M dd MMM yyyy HH:mm:ss.fff * text</c>)
/// on standard output, or appended to the log file once <see cref="RunWithFileAsync"/> has opened it through the library.</summary>
/// <remarks><b>Thread safety</b>: <see cref="Write(string)"/> may be called from any domain or thread; lines are written
/// whole and in order (one <c>write</c> each, to a file opened with <c>O_APPEND</c>, as Redis's fprintf on every line).</remarks>
internal sealed class KvLog
{
    private readonly Lock _gate = new();
    private FileWriter? _file;

    /// <summary>Writes a notice line (Redis's <c>*</c> level mark).</summary>
    public void Write(string text) => Write('*', text);

    /// <summary>Writes a line with Redis's level mark: <c>.</c> debug, <c>-</c> verbose, <c>*</c> notice, <c>#</c> warning.</summary>
    public void Write(char level, string text)
    {
        string line = $"{Environment.ProcessId}:M {DateTime.Now:dd MMM yyyy HH:mm:ss.fff} {level} {text}";
        lock (_gate)
        {
            if (_file is { } file)
            {
                try
                {
                    file.WriteAt(0, Encoding.UTF8.GetBytes(line + "\n")); // append mode: the offset is ignored
                    return;
                }
                catch (Exception e) when (e is IOException or ObjectDisposedException)
                {
                    // As Redis: a line that cannot be logged is dropped; the server goes on (to standard output here).
                }
            }

            Console.Out.WriteLine(line);
        }
    }

    /// <summary>Opens <paramref name="path"/> (created with mode 0666 less the umask if missing, appended to, as Redis's
    /// <c>fopen(logfile, "a")</c>), runs <paramref name="body"/> with the log going there, then returns the log to standard output.</summary>
    /// <param name="fs">The file-system capability (relative paths from the working directory, as Redis).</param>
    /// <param name="path">The log file; empty: <paramref name="body"/> runs with the log on standard output.</param>
    /// <param name="body">The server's run.</param>
    /// <exception cref="KvStartupException">The file cannot be opened: Redis's fatal "Can't open the log file" error (exit 1).</exception>
    public async Task RunWithFileAsync(EioPath fs, string path, Func<Task> body)
    {
        if (path.Length == 0)
        {
            await body();
            return;
        }

        await Switch.RunAsync(async sw =>
        {
            FileWriter file;
            try
            {
                file = await (fs / path).OpenWriteAsync(sw, FileCreate.IfMissing((UnixFileMode)0x1B6), append: true); // 0666
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new KvStartupException($"\n*** FATAL CONFIG FILE ERROR (EioSharp.Kv) ***\nCan't open the log file: {IKvFiles.ErrorText(e)}");
            }

            lock (_gate)
            {
                _file = file;
            }

            try
            {
                await body();
            }
            finally
            {
                lock (_gate)
                {
                    _file = null;
                }
            }
        }, "kv-logfile");
    }
}

/// <summary>The server cannot start (Redis's fatal start errors: the log file or the Unix socket cannot be opened): the message is printed
/// on standard error and the process exits 1.</summary>
internal sealed class KvStartupException(string message) : Exception(message);
