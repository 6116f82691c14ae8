// Custom rewards for the loop tests. digits: the share of digits in the completion; an
// untrained model's samples differ in it, so every group has a signal to learn from (accuracy
// alone is 0 for all of them). constant: 1 for everything, so every group is flat (no signal).
module.exports.components = [
  {
    name: 'digits',
    description: 'Share of the completion that is digits.',
    options: {},
    score: (input) => {
      const text = input.completion;
      return text.length ? (text.match(/[0-9]/g) ?? []).length / text.length : 0;
    },
  },
  {
    name: 'constant',
    description: 'Always 1.',
    options: {},
    score: () => 1,
  },
];
