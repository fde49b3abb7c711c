"""Bounce and complaint mail as real servers write it (Postfix, Exim, Exchange, Gmail, Yahoo),
around the headers of a digest we sent. Line ends are CRLF, as on the wire."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Sent:
    """What the reports quote of the mail they are about."""

    headers: str  # the digest's header block, as sent
    message_id: str
    recipient: str
    return_path: str


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def postfix_user_unknown(sent: Sent) -> bytes:
    return _crlf(f"""Return-Path: <>
Received: by mx1.example.net (Postfix) id 4Xk2p01dWFz9sWq; Mon, 30 Nov 2026 10:12:03 +0000 (UTC)
Date: Mon, 30 Nov 2026 10:12:03 +0000 (UTC)
From: MAILER-DAEMON@mx1.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {sent.return_path}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="4Xk2p01dWFz9sWq.1796033523/mx1.example.net"
Content-Transfer-Encoding: 8bit
Message-Id: <20261130101203.4Xk2p01dWFz9sWq@mx1.example.net>

This is a MIME-encapsulated message.

--4Xk2p01dWFz9sWq.1796033523/mx1.example.net
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mx1.example.net.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<{sent.recipient}>: host mail.example.com[192.0.2.25] said: 550 5.1.1
    <{sent.recipient}>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)

--4Xk2p01dWFz9sWq.1796033523/mx1.example.net
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx1.example.net
X-Postfix-Queue-ID: 4Xk2p01dWFz9sWq
X-Postfix-Sender: rfc822; {sent.return_path}
Arrival-Date: Mon, 30 Nov 2026 10:12:02 +0000 (UTC)

Final-Recipient: rfc822; {sent.recipient}
Original-Recipient: rfc822;{sent.recipient}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mail.example.com
Diagnostic-Code: smtp; 550 5.1.1 <{sent.recipient}>: Recipient address
    rejected: User unknown in virtual mailbox table

--4Xk2p01dWFz9sWq.1796033523/mx1.example.net
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 8bit

Return-Path: <{sent.return_path}>
Received: from amplify.acme.test (amplify.acme.test [198.51.100.7])
	by mx1.example.net (Postfix) with ESMTP id 4Xk2p01dWFz9sWq
	for <{sent.recipient}>; Mon, 30 Nov 2026 10:12:02 +0000 (UTC)
{sent.headers}
--4Xk2p01dWFz9sWq.1796033523/mx1.example.net--
""")


def exim_permanent(sent: Sent) -> bytes:
    """Exim's classic free-form bounce: no DSN part, the failure in prose."""
    return _crlf(f"""Return-path: <>
Envelope-to: {sent.return_path}
Received: from mail by mx.exim.example with local (Exim 4.97)
	id 1vQz3K-0002aB-1x
	for {sent.return_path}; Mon, 30 Nov 2026 10:20:11 +0000
X-Failed-Recipients: {sent.recipient}
Auto-Submitted: auto-replied
From: Mail Delivery System <Mailer-Daemon@mx.exim.example>
To: {sent.return_path}
Subject: Mail delivery failed: returning message to sender
Message-Id: <E1vQz3K-0002aB-1x@mx.exim.example>
Date: Mon, 30 Nov 2026 10:20:11 +0000

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {sent.recipient}
    SMTP error from remote mail server after RCPT TO:<{sent.recipient}>:
    host mx.example.org [203.0.113.9]: 550 5.1.1 <{sent.recipient}>:
    Recipient address rejected: User unknown in local recipient table

------ This is a copy of the message, including all the headers. ------

Return-path: <{sent.return_path}>
Received: from amplify.acme.test ([198.51.100.7])
	by mx.exim.example with esmtp (Exim 4.97)
	id 1vQz3J-0002a9-2c
	for {sent.recipient}; Mon, 30 Nov 2026 10:20:10 +0000
{sent.headers}
(the body is not included)
""")


def exchange_recipient_not_found(sent: Sent) -> bytes:
    return _crlf(f"""From: postmaster@contoso.example
To: {sent.return_path}
Date: Mon, 30 Nov 2026 10:31:44 +0000
Subject: Undeliverable: Your digest
Content-Type: multipart/report; report-type=delivery-status;
	boundary="_000_fa1c2d8e9b7f4c0e8f3a_"
Content-Language: en-US
Message-ID: <fa1c2d8e-9b7f-4c0e-8f3a-1b2c3d4e5f60@contoso.example>
X-MS-Exchange-Message-Is-Ndr:
Auto-Submitted: auto-replied
MIME-Version: 1.0

--_000_fa1c2d8e9b7f4c0e8f3a_
Content-Type: multipart/alternative;
	boundary="_002_fa1c2d8e9b7f4c0e8f3a_"

--_002_fa1c2d8e9b7f4c0e8f3a_
Content-Type: text/plain; charset="us-ascii"

Your message to {sent.recipient} couldn't be delivered.
{sent.recipient.split("@")[0]} wasn't found at contoso.example.

Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not
found by SMTP address lookup'

--_002_fa1c2d8e9b7f4c0e8f3a_
Content-Type: text/html; charset="us-ascii"

<html><body><p><b>Your message to {sent.recipient} couldn't be delivered.</b></p>
<p>Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound'</p></body></html>

--_002_fa1c2d8e9b7f4c0e8f3a_--

--_000_fa1c2d8e9b7f4c0e8f3a_
Content-Type: message/delivery-status

Reporting-MTA: dns;DM6PR11MB4009.namprd11.prod.outlook.example
Received-From-MTA: dns;amplify.acme.test
Arrival-Date: Mon, 30 Nov 2026 10:31:43 +0000

Final-Recipient: rfc822;{sent.recipient}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP
 address lookup

--_000_fa1c2d8e9b7f4c0e8f3a_
Content-Type: text/rfc822-headers

{sent.headers}
--_000_fa1c2d8e9b7f4c0e8f3a_--
""")


def gmail_over_quota(sent: Sent, *, arrival: str = "Mon, 30 Nov 2026 02:40:09 -0800") -> bytes:
    """Gmail gives up on a full mailbox: Action failed, but a 4.x.x (soft) status."""
    return _crlf(f"""Delivered-To: {sent.return_path}
Received: by 2002:a05:6a10:8e8b:b0:5a1:2b3c:4d5e with SMTP id x11csp123456pxb;
        Mon, 30 Nov 2026 02:40:10 -0800 (PST)
Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: {sent.return_path}
Auto-Submitted: auto-replied
Subject: Delivery Status Notification (Failure)
References: {sent.message_id}
In-Reply-To: {sent.message_id}
X-Failed-Recipients: {sent.recipient}
Message-ID: <6745a3da.050a0220.{arrival[17:25].replace(":", "")}.ab12GMR@mx.google.com>
Date: Mon, 30 Nov 2026 02:40:10 -0800 (PST)
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000d1e2f3a4b5c6d7e8"; report-type=delivery-status

--000000000000d1e2f3a4b5c6d7e8
Content-Type: multipart/related; boundary="000000000000d1e2f3a4b5c6d7f0"

--000000000000d1e2f3a4b5c6d7f0
Content-Type: multipart/alternative; boundary="000000000000d1e2f3a4b5c6d7f1"

--000000000000d1e2f3a4b5c6d7f1
Content-Type: text/plain; charset="UTF-8"


** Message not delivered **

Your message couldn't be delivered to {sent.recipient} because the remote server's mailbox is full.

The response was:

452 4.2.2 The recipient's inbox is out of storage space. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp

--000000000000d1e2f3a4b5c6d7f1
Content-Type: text/html; charset="UTF-8"

<html><body><h2>Message not delivered</h2>
<p>The recipient's inbox is out of storage space.</p></body></html>

--000000000000d1e2f3a4b5c6d7f1--

--000000000000d1e2f3a4b5c6d7f0--

--000000000000d1e2f3a4b5c6d7e8
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; amplify.acme.test
Arrival-Date: {arrival}
X-Original-Message-ID: {sent.message_id}

Final-Recipient: rfc822; {sent.recipient}
Action: failed
Status: 4.2.2
Remote-MTA: dns; gmail-smtp-in.l.google.com. (2a00:1450:400c:c00::1b, the server for the
 domain gmail.com.)
Diagnostic-Code: smtp; 452-4.2.2 The recipient's inbox is out of storage space.
Last-Attempt-Date: {arrival}

--000000000000d1e2f3a4b5c6d7e8
Content-Type: message/rfc822

{sent.headers}
[body omitted]

--000000000000d1e2f3a4b5c6d7e8--
""")


def yahoo_complaint(sent: Sent) -> bytes:
    """An ARF (RFC 5965) report from Yahoo's feedback loop, sent to the registered FBL address."""
    return _crlf(f"""Return-Path: <>
Received: from feedback.yahoo.example by mta1.acme.test; Mon, 30 Nov 2026 11:02:13 +0000
From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.example>
To: fbl@acme.test
Subject: FW: Your digest
Date: Mon, 30 Nov 2026 11:02:12 +0000
Message-ID: <1796035332.38291.yahoo-fbl@arf.mail.yahoo.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
	boundary="----=_Part_1234_5678.1796035332"

------=_Part_1234_5678.1796035332
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP 198.51.100.7
on Mon, 30 Nov 2026 10:55:02 +0000.
For more information about this format please see http://www.mipassoc.org/arf/.

------=_Part_1234_5678.1796035332
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 0.1
Original-Mail-From: <{sent.return_path}>
Original-Rcpt-To: <{sent.recipient}>
Received-Date: Mon, 30 Nov 2026 10:55:02 +0000
Reported-Domain: acme.test
Authentication-Results: mta1000.mail.ne1.yahoo.example  from=acme.test; domainkeys=neutral
 (no sig);  from=acme.test; dkim=pass (ok)

------=_Part_1234_5678.1796035332
Content-Type: message/rfc822
Content-Disposition: inline

{sent.headers}
[body omitted]

------=_Part_1234_5678.1796035332--
""")
