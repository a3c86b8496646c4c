
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'zc' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'zc'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'zc' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Send files and directories (''-'' for stdin) to a receiver at HOST:PORT, or with --listen wait for a receiver to connect (with -k, for every receiver until interrupted)')
            [CompletionResult]::new('recv', 'recv', [CompletionResultType]::ParameterValue, 'Listen and receive (default [::]:9000, into the current directory, announced on the LAN), or connect to a listening sender at HOST:PORT or announced as @NAME')
            [CompletionResult]::new('peers', 'peers', [CompletionResultType]::ParameterValue, 'List the zc receivers and serving senders announced on the LAN')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a completion script for a shell')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'zc;send' {
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Reverse mode: listen here (PORT, HOST:PORT, [V6]:PORT) and send to the receiver that connects (''zc recv HOST:PORT'')')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Reverse mode: listen here (PORT, HOST:PORT, [V6]:PORT) and send to the receiver that connects (''zc recv HOST:PORT'')')
            [CompletionResult]::new('--offset', '--offset', [CompletionResultType]::ParameterName, 'Start at this byte of FILE; the receiver writes at the same offset')
            [CompletionResult]::new('--count', '--count', [CompletionResultType]::ParameterName, 'Send at most this many bytes from the offset')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'The name announced for a single source (default: its base name)')
            [CompletionResult]::new('--retry', '--retry', [CompletionResultType]::ParameterName, 'On a dropped connection, reconnect up to N times with backoff and resume (framed mode only: not with --raw)')
            [CompletionResult]::new('--max-conns', '--max-conns', [CompletionResultType]::ParameterName, 'With -k: at most N transfers at once; later receivers wait their turn (default 256)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up connecting after this many seconds')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give up when no byte has moved for this many seconds')
            [CompletionResult]::new('--limit-rate', '--limit-rate', [CompletionResultType]::ParameterName, 'Move at most RATE bytes a second (500K, 10M, 1.5G: the suffixes of --offset). The sender paces what it hands to sendfile, the receiver what it reads; either side can set it')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'How to show progress on stderr')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Pre-shared key: both sides must hold it. It authenticates both ends and encrypts the whole session (names, sizes, data) with AES-256-GCM after a SPAKE2 handshake; a wrong key is refused before anything is sent. The bytes then go through user space (no sendfile or splice; see --no-encrypt). Prefer ZC_KEY: a command line shows in ps')
            [CompletionResult]::new('--code', '--code', [CompletionResultType]::ParameterName, 'A one-time code instead of a key. Alone on the listening side (''zc recv --code''), zc makes a fresh one and prints it with the command to run on the other side, which gives it (''--code 7-plaza-quartz-ember''). Encrypts the session as a key does; one wrong try burns the code')
            [CompletionResult]::new('--announce', '--announce', [CompletionResultType]::ParameterName, 'Listening: the name announced on the LAN (default: this host''s name)')
            [CompletionResult]::new('--find-timeout', '--find-timeout', [CompletionResultType]::ParameterName, 'Looking for a peer on the LAN (@NAME, or no address): give up after this many seconds')
            [CompletionResult]::new('--no-resume', '--no-resume', [CompletionResultType]::ParameterName, 'Start at --offset (default 0) even if the receiver holds a partial copy')
            [CompletionResult]::new('-L', '-L ', [CompletionResultType]::ParameterName, 'In a directory, follow symbolic links and send what they point to (without it, links that stay inside the tree are sent as links)')
            [CompletionResult]::new('--dereference', '--dereference', [CompletionResultType]::ParameterName, 'In a directory, follow symbolic links and send what they point to (without it, links that stay inside the tree are sent as links)')
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'With --listen: serve the sources to every receiver that connects, several at once, until interrupted; each file is hashed once, not once per receiver')
            [CompletionResult]::new('--keep-open', '--keep-open', [CompletionResultType]::ParameterName, 'With --listen: serve the sources to every receiver that connects, several at once, until interrupted; each file is hashed once, not once per receiver')
            [CompletionResult]::new('--no-sendfile', '--no-sendfile', [CompletionResultType]::ParameterName, 'Use the buffered copy path instead of sendfile(2)')
            [CompletionResult]::new('--http', '--http', [CompletionResultType]::ParameterName, 'Serve the sources over plain HTTP/1.1 to any client (curl, wget, a browser) until interrupted, on --listen ADDR (default [::]:9000); the URLs carry a random token unless --open; refused with a key or a code, which plain HTTP cannot carry')
            [CompletionResult]::new('--open', '--open', [CompletionResultType]::ParameterName, 'With --http: serve without the token in the URLs, to anyone who can reach the port (a trusted network only)')
            [CompletionResult]::new('--raw', '--raw', [CompletionResultType]::ParameterName, 'Plain bytes, no header or negotiation: talks to nc, socat, /dev/tcp')
            [CompletionResult]::new('--no-verify', '--no-verify', [CompletionResultType]::ParameterName, 'Skip the SHA-256 end-to-end check')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Use IPv4 only')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Use IPv6 only')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress and no summary; errors still go to stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress and no summary; errors still go to stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Every line written to stderr is one JSON object')
            [CompletionResult]::new('--no-announce', '--no-announce', [CompletionResultType]::ParameterName, 'Listening: do not announce on the LAN')
            [CompletionResult]::new('--no-encrypt', '--no-encrypt', [CompletionResultType]::ParameterName, 'With a key: authenticate both ends but send in the clear, so sendfile(2) and splice(2) stay zero-copy. Anyone on the path can read names, sizes and data (the digests are keyed, so changes are still caught). For a trusted link; both sides must agree')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'zc;recv' {
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Where to listen: PORT, HOST:PORT or [V6]:PORT (port 0 picks a free one)')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Where to listen: PORT, HOST:PORT or [V6]:PORT (port 0 picks a free one)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'A file, an existing directory, or ''-'' for stdout (default: the current directory)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'A file, an existing directory, or ''-'' for stdout (default: the current directory)')
            [CompletionResult]::new('--max-conns', '--max-conns', [CompletionResultType]::ParameterName, 'With -k: at most N transfers at once; later senders wait their turn (default 256)')
            [CompletionResult]::new('--max-size', '--max-size', [CompletionResultType]::ParameterName, 'Refuse transfers larger than this')
            [CompletionResult]::new('--max-files', '--max-files', [CompletionResultType]::ParameterName, 'Refuse a tree with more entries than this')
            [CompletionResult]::new('--max-memory', '--max-memory', [CompletionResultType]::ParameterName, 'Refuse a tree whose manifest would take the receiver past this much memory for manifests (the files asked for, the directories and links kept for the end): the receiver''s whole budget, shared by the sessions of -k; 256M holds a million entries of ordinary names')
            [CompletionResult]::new('--offset', '--offset', [CompletionResultType]::ParameterName, 'With --raw: write from this byte of the output file, without truncating it')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up connecting after this many seconds')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give up when no byte has moved for this many seconds')
            [CompletionResult]::new('--limit-rate', '--limit-rate', [CompletionResultType]::ParameterName, 'Move at most RATE bytes a second (500K, 10M, 1.5G: the suffixes of --offset). The sender paces what it hands to sendfile, the receiver what it reads; either side can set it')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'How to show progress on stderr')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Pre-shared key: both sides must hold it. It authenticates both ends and encrypts the whole session (names, sizes, data) with AES-256-GCM after a SPAKE2 handshake; a wrong key is refused before anything is sent. The bytes then go through user space (no sendfile or splice; see --no-encrypt). Prefer ZC_KEY: a command line shows in ps')
            [CompletionResult]::new('--code', '--code', [CompletionResultType]::ParameterName, 'A one-time code instead of a key. Alone on the listening side (''zc recv --code''), zc makes a fresh one and prints it with the command to run on the other side, which gives it (''--code 7-plaza-quartz-ember''). Encrypts the session as a key does; one wrong try burns the code')
            [CompletionResult]::new('--announce', '--announce', [CompletionResultType]::ParameterName, 'Listening: the name announced on the LAN (default: this host''s name)')
            [CompletionResult]::new('--find-timeout', '--find-timeout', [CompletionResultType]::ParameterName, 'Looking for a peer on the LAN (@NAME, or no address): give up after this many seconds')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Overwrite an existing complete file')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Give what arrives the sender''s permission bits exactly, not less this side''s umask (setuid, setgid and sticky are never set)')
            [CompletionResult]::new('--preserve-modes', '--preserve-modes', [CompletionResultType]::ParameterName, 'Give what arrives the sender''s permission bits exactly, not less this side''s umask (setuid, setgid and sticky are never set)')
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'Keep listening and accept transfers concurrently until interrupted')
            [CompletionResult]::new('--keep-open', '--keep-open', [CompletionResultType]::ParameterName, 'Keep listening and accept transfers concurrently until interrupted')
            [CompletionResult]::new('--http', '--http', [CompletionResultType]::ParameterName, 'Take uploads over plain HTTP/1.1 from any client (curl -T, a browser''s upload page) into the -o directory until interrupted, on --listen ADDR (default [::]:9000); the URLs carry a random token unless --open; refused with a key or a code, which plain HTTP cannot carry')
            [CompletionResult]::new('--open', '--open', [CompletionResultType]::ParameterName, 'With --http: take uploads without the token in the URLs, from anyone who can reach the port (a trusted network only)')
            [CompletionResult]::new('--raw', '--raw', [CompletionResultType]::ParameterName, 'Plain bytes, no header or negotiation: talks to nc, socat, /dev/tcp')
            [CompletionResult]::new('--no-verify', '--no-verify', [CompletionResultType]::ParameterName, 'Skip the SHA-256 end-to-end check')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Use IPv4 only')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Use IPv6 only')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress and no summary; errors still go to stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress and no summary; errors still go to stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Every line written to stderr is one JSON object')
            [CompletionResult]::new('--no-announce', '--no-announce', [CompletionResultType]::ParameterName, 'Listening: do not announce on the LAN')
            [CompletionResult]::new('--no-encrypt', '--no-encrypt', [CompletionResultType]::ParameterName, 'With a key: authenticate both ends but send in the clear, so sendfile(2) and splice(2) stay zero-copy. Anyone on the path can read names, sizes and data (the digests are keyed, so changes are still caught). For a trusted link; both sides must agree')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'zc;peers' {
            [CompletionResult]::new('--find-timeout', '--find-timeout', [CompletionResultType]::ParameterName, 'How long to listen for answers, in seconds')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'Keep listing, as peers come and go, until interrupted')
            [CompletionResult]::new('--watch', '--watch', [CompletionResultType]::ParameterName, 'Keep listing, as peers come and go, until interrupted')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON object a line, one per peer')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'zc;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'zc;help' {
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Send files and directories (''-'' for stdin) to a receiver at HOST:PORT, or with --listen wait for a receiver to connect (with -k, for every receiver until interrupted)')
            [CompletionResult]::new('recv', 'recv', [CompletionResultType]::ParameterValue, 'Listen and receive (default [::]:9000, into the current directory, announced on the LAN), or connect to a listening sender at HOST:PORT or announced as @NAME')
            [CompletionResult]::new('peers', 'peers', [CompletionResultType]::ParameterValue, 'List the zc receivers and serving senders announced on the LAN')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a completion script for a shell')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'zc;help;send' {
            break
        }
        'zc;help;recv' {
            break
        }
        'zc;help;peers' {
            break
        }
        'zc;help;completions' {
            break
        }
        'zc;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
