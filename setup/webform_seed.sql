-- Seed data for the demo: a handful of ordinary submissions, one with commas,
-- quotes and a newline (to show CSV quoting), and a tie of five rows that
-- share one timestamp, as a bulk import makes.
INSERT INTO webform_submissions (submitted_date, subject, message, category, impact, employees, due_date, contact_email, products) VALUES
 ('2026-11-20 09:00:00+00', 'Laptop will not boot', 'Black screen since this morning.', 'Hardware', 'High', 1, '2026-11-25', 'ana@example.com', 'Laptop'),
 ('2026-11-20 09:05:00+00', 'VPN access for new starter', 'Please grant VPN access to "J. Smith", starting Monday.', 'Access', 'Medium', 1, NULL, 'hr@example.com', NULL),
 ('2026-11-20 09:10:00+00', 'Office 365 licence', E'Need a licence for the team,\nthree seats please.', 'Software', 'Low', 3, NULL, 'lead@example.com', 'Laptop,Phone');
INSERT INTO webform_submissions (submitted_date, subject, message, category, impact)
SELECT '2026-11-21 08:00:00+00', 'Bulk import ' || g, 'Imported in one statement', 'Software', 'Low'
FROM generate_series(1, 5) g;
