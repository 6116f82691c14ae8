// A custom reward for the loop tests: the share of digits in the completion. An untrained
// model's samples differ in it, so every group has a signal to learn from (accuracy alone
// is 0 for all of them).
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
];
