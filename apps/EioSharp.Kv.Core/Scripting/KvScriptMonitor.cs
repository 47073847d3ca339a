namespace EioSharp.Kv;

/// <summary>What the store publishes about the script it is running, for the connections: they answer
/// <c>-BUSY</c> while a script has run longer than the threshold, and handle <c>SCRIPT KILL</c>/<c>FUNCTION KILL</c>
/// themselves then (the store owner is busy running the script and reads no queue).</summary>
/// <remarks><b>Thread safety</b>: the store owner writes (<see cref="Started"/>, <see cref="MarkWrote"/>,
/// <see cref="Ended"/>); any connection reads and requests a kill. Every field is volatile or interlocked.</remarks>
public sealed class KvScriptMonitor
{
    /// <summary>The error other clients get while an EVAL script is busy.</summary>
    public const string BusyEvalError = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

    /// <summary>The error other clients get while a function (FCALL) is busy.</summary>
    public const string BusyFunctionError = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

    /// <summary>SCRIPT KILL of a script that already wrote.</summary>
    public const string UnkillableError = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";

    /// <summary>SCRIPT KILL / FUNCTION KILL with no script running.</summary>
    public const string NotBusyError = "NOTBUSY No scripts in execution right now.";

    private long _startedTicks = -1; // Environment.TickCount64 when the running script started; -1: none runs
    private volatile bool _isEval;
    private volatile bool _wrote;
    private volatile bool _killRequested;
    private volatile int _busyThresholdMs = 5000;

    /// <summary>Redis's <c>busy-reply-threshold</c> (alias <c>lua-time-limit</c>): after this many milliseconds a
    /// running script makes other clients get <c>-BUSY</c>; 5000 by default. Zero or negative: immediately.</summary>
    public int BusyReplyThresholdMs
    {
        get => _busyThresholdMs;
        set => _busyThresholdMs = value;
    }

    /// <summary>Whether a script is running.</summary>
    public bool IsRunning => Volatile.Read(ref _startedTicks) >= 0;

    /// <summary>Whether a script has been running longer than <see cref="BusyReplyThresholdMs"/>.</summary>
    public bool IsBusy
    {
        get
        {
            long started = Volatile.Read(ref _startedTicks);
            return started >= 0 && Environment.TickCount64 - started >= _busyThresholdMs;
        }
    }

    /// <summary>Called by the running script's hook (every 100,000 Lua instructions) while the script is past
    /// <see cref="BusyReplyThresholdMs"/>, on the store owner's thread: the server sets it when connections share that
    /// thread, to run their ready work (<c>Domain.ProcessEventsWhileBlocked</c>) so that they answer <c>-BUSY</c> and
    /// take SCRIPT KILL meanwhile. Null: nothing to do (the connections live on other threads).</summary>
    /// <remarks>Whatever runs inside must not touch the store: the script is in the middle of using it.</remarks>
    public Action? WhileBusy { get; set; }

    /// <summary>Runs <see cref="WhileBusy"/>; an exception from it is swallowed (it must not cross the Lua frames).</summary>
    internal void ProcessEventsWhileBusy()
    {
        try
        {
            WhileBusy?.Invoke();
        }
        catch (Exception)
        {
            // Nothing a connection does may fail the script; the domain reports a crashed continuation itself.
        }
    }

    /// <summary>The <c>-BUSY</c> error (without the '-') for the script running now: EVAL's or FCALL's text.</summary>
    public string BusyError => _isEval ? BusyEvalError : BusyFunctionError;

    /// <summary>Whether a kill of the running script was requested (read by the script's hook).</summary>
    internal bool KillRequested => _killRequested;

    /// <summary>The store starts a script (eval: EVAL/EVALSHA; otherwise FCALL).</summary>
    internal void Started(bool isEval)
    {
        _isEval = isEval;
        _wrote = false;
        _killRequested = false;
        Volatile.Write(ref _startedTicks, Environment.TickCount64);
    }

    /// <summary>The running script changed the dataset: it can no longer be killed.</summary>
    internal void MarkWrote() => _wrote = true;

    /// <summary>The script finished.</summary>
    internal void Ended()
    {
        Volatile.Write(ref _startedTicks, -1);
        _killRequested = false;
    }

    /// <summary>Answers a data command while a script is busy: SCRIPT KILL and FUNCTION KILL act, anything else gets
    /// <c>-BUSY</c>. Call only when <see cref="IsBusy"/>.</summary>
    /// <param name="command">The command.</param>
    /// <param name="reply">Where its reply goes.</param>
    public void AnswerWhileBusy(KvCommand command, RespWriter reply)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(reply);
        bool isEval = _isEval;
        bool scriptKill = command.Count == 2 && System.Text.Ascii.EqualsIgnoreCase(command[0], "SCRIPT"u8) && System.Text.Ascii.EqualsIgnoreCase(command[1], "KILL"u8);
        bool functionKill = command.Count == 2 && System.Text.Ascii.EqualsIgnoreCase(command[0], "FUNCTION"u8) && System.Text.Ascii.EqualsIgnoreCase(command[1], "KILL"u8);
        if (!scriptKill && !functionKill)
        {
            reply.WriteError(isEval ? BusyEvalError : BusyFunctionError);
            return;
        }
        if (!IsRunning)
        {
            reply.WriteError(NotBusyError);
        }
        else if (_wrote)
        {
            reply.WriteError(UnkillableError);
        }
        else if (scriptKill && !isEval)
        {
            reply.WriteError(BusyFunctionError);
        }
        else if (functionKill && isEval)
        {
            reply.WriteError(BusyEvalError);
        }
        else
        {
            _killRequested = true;
            reply.WriteOk();
        }
    }
}
